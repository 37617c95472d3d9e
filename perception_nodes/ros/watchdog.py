"""The process watchdog: a hung callback or a stopped executor never leaves a silent live
process.

Every node callback runs through ``ManagedNode``'s guard, which records what is running and
since when, and each node's diagnostics timer is its heartbeat. A thread of its own checks
both; when a callback has run longer than the timeout, or no heartbeat came for that long
(the executor is dead or blocked), it logs the reason, reports ERROR on /diagnostics for
every node of the process, and calls ``on_stall`` (by default: exit with
``EXIT_STALLED`` so that a supervisor, the launch file's ``respawn``, systemd or the CI
restarts it: a thread stuck in native code cannot be stopped from Python).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

EXIT_STALLED = 3  # the exit status of a process its watchdog ended


def exit_stalled(reason: str) -> None:
    """Default ``on_stall``: end the process now, with ``EXIT_STALLED``."""
    print(f"perception watchdog: {reason}; exiting with status {EXIT_STALLED} for the "
          "supervisor to restart", file=sys.stderr, flush=True)
    os._exit(EXIT_STALLED)


class Watchdog:
    """Checks ``nodes`` (objects with ``stall_reason(timeout_s) -> str`` and
    ``report_stall(reason)``) every ``timeout_s / 4`` s, and ``executor_alive()`` when
    given; calls ``on_stall(reason)`` once, at the first stall, after reporting it."""

    def __init__(self, nodes: Callable[[], list], timeout_s: float,
                 executor_alive: Callable[[], bool] | None = None,
                 on_stall: Callable[[str], None] = exit_stalled) -> None:
        if timeout_s <= 0:
            raise ValueError(f"watchdog timeout must be positive, got {timeout_s}")
        self.nodes, self.timeout_s = nodes, timeout_s
        self.executor_alive, self.on_stall = executor_alive, on_stall
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perception-watchdog",
                                        daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def check(self) -> str:
        """The first stall found now, or ''."""
        if self.executor_alive is not None and not self.executor_alive():
            return "the executor stopped: no node of this process runs callbacks"
        for node in self.nodes():
            reason = node.stall_reason(self.timeout_s)
            if reason:
                return reason
        return ""

    def _run(self) -> None:
        while not self._stop.wait(self.timeout_s / 4):
            reason = self.check()
            if not reason or self._stop.is_set():
                continue
            self.reason = reason
            for node in self.nodes():
                try:
                    node.report_stall(reason)
                except Exception as exc:  # noqa: BLE001 - the report must not stop the exit
                    print(f"perception watchdog: could not report on /diagnostics: {exc}",
                          file=sys.stderr)
            self.on_stall(reason)
            return
