"""Node health: counters, rate and latency, published on /diagnostics once a second."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

# DiagnosticStatus levels by number
LEVEL_NAMES = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def level_rank(level: bytes | int) -> int:
    """A DiagnosticStatus level (a one-byte ``bytes`` in rclpy) as an int."""
    return level[0] if isinstance(level, bytes) else int(level)


class NodeHealth:
    """Thread-safe counters of a node's frames.

    ``received``/``published`` frames, ``dropped`` (overwritten before processing: queues
    never grow without bound), ``malformed`` (rejected input), and processing latency.
    Inputs that must keep arriving are watched (:meth:`watch`, :meth:`heard`): one silent
    for ``input_warn_s`` is WARN, for ``input_error_s`` ERROR. Named conditions
    (:meth:`set_condition`: a calibration that does not fit the camera, a source that
    ended) hold their level until cleared.
    """

    def __init__(self, window: int = 200, input_warn_s: float = 5.0,
                 input_error_s: float = 15.0) -> None:
        self._lock = threading.Lock()
        self.counters = {"received": 0, "published": 0, "dropped": 0, "malformed": 0}
        self._publish_times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self.info: dict[str, str] = {}
        self.last_error = ""
        self.fault = ""  # why the node cannot work (a failed configure): ERROR until cleared
        self.input_warn_s, self.input_error_s = input_warn_s, input_error_s
        self._inputs: dict[str, float] = {}  # watched input -> last arrival (monotonic s)
        self._heard: set[str] = set()
        self.conditions: dict[str, tuple[int, str]] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def published(self, latency_s: float | None = None) -> None:
        with self._lock:
            self.counters["published"] += 1
            self._publish_times.append(time.monotonic())
            if latency_s is not None:
                self._latencies.append(latency_s)

    def malformed(self, reason: str) -> None:
        with self._lock:
            self.counters["malformed"] += 1
            self.last_error = reason

    def callback_error(self, reason: str) -> None:
        """An unexpected exception in a callback, survived: WARN with ``reason``."""
        with self._lock:
            self.counters["callback_errors"] = self.counters.get("callback_errors", 0) + 1
            self.last_error = reason

    def fail(self, reason: str) -> None:
        """The node cannot do its job (configure failed, model refused): ERROR with
        ``reason`` until :meth:`recover`."""
        with self._lock:
            self.fault = self.last_error = reason

    def recover(self) -> None:
        with self._lock:
            self.fault = ""

    def watch(self, names: list[str] | tuple[str, ...]) -> None:
        """Expect ``names`` to keep arriving from now on (a node that starts processing)."""
        now = time.monotonic()
        with self._lock:
            self._inputs = {name: now for name in names}
            self._heard = set()

    def unwatch(self) -> None:
        """Expect nothing (a node that stopped processing: deactivated or disabled)."""
        with self._lock:
            self._inputs = {}

    def heard(self, name: str) -> None:
        """``name`` arrived now."""
        with self._lock:
            if name in self._inputs:
                self._inputs[name] = time.monotonic()
                self._heard.add(name)

    def silent_inputs(self) -> list[tuple[str, float, bool]]:
        """``(name, seconds silent, ever heard)`` of each watched input silent for more than
        ``input_warn_s``, the longest first."""
        now = time.monotonic()
        with self._lock:
            out = [(n, now - t, n in self._heard) for n, t in self._inputs.items()
                   if now - t > self.input_warn_s]
        return sorted(out, key=lambda x: -x[1])

    def set_condition(self, key: str, level: bytes, message: str) -> None:
        """A lasting state of the node at ``level`` (DiagnosticStatus.WARN or ERROR) until
        :meth:`clear_condition` (e.g. a calibration that does not fit the camera)."""
        with self._lock:
            self.conditions[key] = (level, message)

    def clear_condition(self, key: str) -> None:
        with self._lock:
            self.conditions.pop(key, None)

    def rate_hz(self) -> float:
        with self._lock:
            times = list(self._publish_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def latency_ms(self, q: float) -> float:
        with self._lock:
            lat = list(self._latencies)
        return float(np.percentile(lat, q) * 1e3) if lat else float("nan")

    def status(self, name: str, hardware_id: str = "") -> DiagnosticStatus:
        """A DiagnosticStatus, the worst state first: ERROR when the node cannot work
        (:meth:`fail`), an ERROR condition or an input silent past ``input_error_s``; WARN
        for a WARN condition, an input silent past ``input_warn_s``, a failed callback or
        malformed input; else OK."""
        with self._lock:
            counters = dict(self.counters)
            info = dict(self.info)
            last_error, fault = self.last_error, self.fault
            conditions = sorted(self.conditions.values(), key=lambda c: -level_rank(c[0]))
        silent = self.silent_inputs()
        stale = [(DiagnosticStatus.ERROR if age > self.input_error_s else DiagnosticStatus.WARN,
                  f"no {n} for {age:.0f} s" if heard else f"no {n} received yet "
                  f"({age:.0f} s)") for n, age, heard in silent]
        worst = sorted(conditions + stale, key=lambda c: -level_rank(c[0]))
        level = DiagnosticStatus.OK
        message = "ok"
        if fault:
            level, message = DiagnosticStatus.ERROR, f"not working: {fault}"
        elif worst:
            level, message = worst[0][0], "; ".join(m for lv, m in worst if lv == worst[0][0])
        elif counters.get("callback_errors"):
            level, message = DiagnosticStatus.WARN, f"callback failed: {last_error}"
        elif counters.get("malformed"):
            level, message = DiagnosticStatus.WARN, f"malformed input: {last_error}"
        elif counters.get("dropped"):
            level, message = DiagnosticStatus.OK, "ok (dropping frames to keep up)"
        values = {k: str(v) for k, v in counters.items()}
        values["rate_hz"] = f"{self.rate_hz():.2f}"
        values["latency_p50_ms"] = f"{self.latency_ms(50):.1f}"
        values["latency_p99_ms"] = f"{self.latency_ms(99):.1f}"
        values.update(info)
        if silent:
            values["silent_inputs"] = " ".join(n for n, _, _ in silent)
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    """Wrap statuses in a DiagnosticArray stamped ``stamp``."""
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = statuses
    return msg
