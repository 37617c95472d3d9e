"""Node health: counters, rate and latency, published on /diagnostics once a second."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class NodeHealth:
    """Thread-safe counters of a node's frames.

    ``received``/``published`` frames, ``dropped`` (overwritten before processing: queues
    never grow without bound), ``malformed`` (rejected input), and processing latency.
    """

    def __init__(self, window: int = 200) -> None:
        self._lock = threading.Lock()
        self.counters = {"received": 0, "published": 0, "dropped": 0, "malformed": 0}
        self._publish_times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self.info: dict[str, str] = {}
        self.last_error = ""
        self.fault = ""  # why the node cannot work (a failed configure): ERROR until cleared

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
        """A DiagnosticStatus: ERROR when the node cannot work (:meth:`fail`), WARN when a
        callback failed or inputs were malformed, else OK."""
        with self._lock:
            counters = dict(self.counters)
            info = dict(self.info)
            last_error, fault = self.last_error, self.fault
        level = DiagnosticStatus.OK
        message = "ok"
        if fault:
            level, message = DiagnosticStatus.ERROR, f"not working: {fault}"
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
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    """Wrap statuses in a DiagnosticArray stamped ``stamp``."""
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = statuses
    return msg
