"""`perception soak`: the default bringup for N minutes, watched as an operator would.

Runs the configured stack in this process (as ``perception bringup`` does) with a probe that
counts pick outcomes and reads every node's ``/diagnostics``; every ``sample_s`` seconds it
records the process RSS, each node's latency p50 and the picks so far. The report: picks per
minute (and the longest gap between picks), RSS growth after the warm-up, latency drift per
node (the last third's median latency over the first third's, after warm-up), the worst
diagnostics level per node, and whether the targets held.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from perception_nodes.bringup import Bringup
from perception_nodes.ros.diagnostics import LEVEL_NAMES, level_rank

# targets of the soak (issue: 10 minutes, picks in every minute, RSS growth under 5 %)
MAX_RSS_GROWTH = 0.05
MAX_LATENCY_DRIFT = 1.5  # last third's median latency over the first third's


def rss_mb() -> float:
    """This process's resident set size (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class SoakProbe:
    """Pick outcomes (time, items lifted) and the newest diagnostics of each node."""

    def __init__(self, node: Node) -> None:
        self.lock = threading.Lock()
        self.picks: list[tuple[float, int]] = []
        self.levels: dict[str, int] = {}
        self.messages: dict[str, str] = {}
        self.latency: dict[str, float] = {}
        node.create_subscription(DiagnosticArray, "arm/pick_outcome", self._on_outcome, 10)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_outcome(self, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for s in msg.status for kv in s.values}
        with self.lock:
            self.picks.append((time.monotonic(), int(values.get("items_lifted", "0"))))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                if not status.name.startswith("perception: "):
                    continue
                name = status.name.removeprefix("perception: ")
                level = level_rank(status.level)
                if level > self.levels.get(name, -1):
                    self.messages[name] = status.message
                self.levels[name] = max(self.levels.get(name, 0), level)
                values = {kv.key: kv.value for kv in status.values}
                latency = float(values.get("latency_p50_ms", "nan"))
                if np.isfinite(latency):
                    self.latency[name] = latency


def soak(minutes: float, config: Path | str | None = None, overrides: dict | None = None,
         warmup_s: float = 60.0, sample_s: float = 10.0, progress: bool = True) -> dict:
    """Run the stack for ``minutes`` and return the report (see the module docstring)."""
    duration = minutes * 60.0
    samples = []
    with Bringup(config, overrides=overrides) as bringup:
        probe = bringup.start_with_probe("soak_probe", SoakProbe)
        start = time.monotonic()
        while time.monotonic() - start < duration:
            bringup.run_for(min(sample_s, duration - (time.monotonic() - start)))
            with probe.lock:
                sample = {"t_s": round(time.monotonic() - start, 1), "rss_mb": round(rss_mb(), 1),
                          "picks": len(probe.picks),
                          "latency_p50_ms": {k: round(v, 1) for k, v in probe.latency.items()}}
            samples.append(sample)
            if progress:
                print(f"soak {sample['t_s']:.0f}/{duration:.0f} s: {sample['picks']} picks, "
                      f"RSS {sample['rss_mb']:.0f} MB", flush=True)
        with probe.lock:
            picks = [(t - start, lifted) for t, lifted in probe.picks]
            levels, messages = dict(probe.levels), dict(probe.messages)
    return report(samples, picks, levels, messages, minutes, warmup_s)


def report(samples: list[dict], picks: list[tuple[float, int]], levels: dict[str, int],
           messages: dict[str, str], minutes: float, warmup_s: float) -> dict:
    """The soak's JSON report from its samples and picks (times in s from the start)."""
    whole = int(minutes)
    per_minute = [sum(1 for t, _ in picks if m * 60 <= t < (m + 1) * 60) for m in range(whole)]
    times = [0.0] + [t for t, _ in picks] + [minutes * 60.0]
    warm = [s for s in samples if s["t_s"] >= warmup_s] or samples[-1:]
    third = max(1, len(warm) // 3)
    # RSS swings by tens of MB with the megabyte frames in flight: compare the medians of
    # the first and the last third after warm-up, not two samples
    rss_first = float(np.median([s["rss_mb"] for s in warm[:third]])) if warm else 0.0
    rss_last = float(np.median([s["rss_mb"] for s in warm[-third:]])) if warm else 0.0
    growth = (rss_last - rss_first) / rss_first if rss_first else 0.0
    drift = {}
    for node in sorted({k for s in warm for k in s["latency_p50_ms"]}):
        first = [s["latency_p50_ms"][node] for s in warm[:third] if node in s["latency_p50_ms"]]
        last = [s["latency_p50_ms"][node] for s in warm[-third:] if node in s["latency_p50_ms"]]
        if first and last and np.median(first) > 0:
            drift[node] = round(float(np.median(last) / np.median(first)), 2)
    targets = {
        "picks_every_minute": bool(per_minute) and min(per_minute) > 0,
        "rss_growth_under_5pct": growth < MAX_RSS_GROWTH,
        "no_latency_drift": all(v <= MAX_LATENCY_DRIFT for v in drift.values()),
    }
    return {
        "minutes": minutes, "warmup_s": warmup_s,
        "picks": len(picks), "items_lifted": sum(lifted for _, lifted in picks),
        "picks_without_lift": sum(1 for _, lifted in picks if lifted == 0),
        "picks_per_minute": per_minute,
        "longest_gap_between_picks_s": round(float(np.diff(times).max()), 1),
        "rss_mb_first_third_median": round(rss_first, 1),
        "rss_mb_last_third_median": round(rss_last, 1),
        "rss_mb_max": max(s["rss_mb"] for s in samples) if samples else None,
        "rss_growth_after_warmup": round(growth, 4),
        "latency_drift": drift,
        "worst_diagnostics": {k: LEVEL_NAMES.get(v, str(v)) for k, v in sorted(levels.items())},
        "worst_diagnostics_message": messages,
        "targets": targets, "passed": all(targets.values()),
        "samples": samples,
    }


def write_report(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    if out is None:
        print(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(out)
