"""Run the configured nodes in one process on a multi-threaded executor.

The in-process twin of ``launch/bringup.launch.py`` (a component container's role): the same
parameter file, the same node list, ``name:=value`` style overrides per node.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from perception_nodes.registry import node_class
from perception_nodes.resources import default_config
from perception_nodes.ros.memory import limit_malloc_arenas
from perception_nodes.ros.watchdog import Watchdog, exit_stalled


def config_key(key: str) -> str:
    """The node a parameter-file key applies to: ``/**/segmentation``, ``/segmentation`` and
    ``segmentation`` all name the node ``segmentation`` (``/**/`` keys apply under any
    namespace, which is how the shipped file is written)."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def load_config(path: Path | str | None = None, overlays: list[Path | str] = ()
                ) -> tuple[list[str], dict[str, dict]]:
    """Read a parameter file and the files that overlay it, later ones winning (as ROS 2
    applies several ``--params-file``): ``(node names to start, {node: {param: value}})``.

    ``path`` None: the package's ``config/perception.yaml``; ``overlays``: e.g. the cell file
    of ``perception calibrate``."""
    params: dict[str, dict] = {}
    for file in (path or default_config(), *overlays):
        data = yaml.safe_load(Path(file).read_text()) or {}
        for key, section in data.items():
            params.setdefault(config_key(str(key)), {}).update(
                (section or {}).get("ros__parameters", {}))
    nodes = list(params.pop("perception_bringup", {}).get("nodes", []))
    return nodes, params


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``node.param:=value`` strings to ``{node: {param: value}}`` (values parsed as YAML)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition(":=")
        node, dot, param = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"override {item!r} is not node.param:=value")
        out.setdefault(node, {})[param] = yaml.safe_load(value)
    return out


class Bringup:
    """Nodes plus their executor, in a context of their own; spin in a background thread.

    Started in the background, a :class:`Watchdog` checks the executor thread and every
    node's callbacks: a dead executor or a callback running over ``watchdog_timeout_s`` is
    logged, reported as ERROR on /diagnostics and handed to ``on_stall`` (default: the
    process exits with status 3 for its supervisor to restart it; 0 = no watchdog).
    """

    def __init__(self, config: Path | str | None = None, nodes: list[str] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None,
                 context: Context | None = None, watchdog_timeout_s: float = 60.0,
                 on_stall: Callable[[str], None] = exit_stalled,
                 overlays: list[Path | str] = (), namespace: str = "") -> None:
        names, params = load_config(config, overlays)
        names = nodes if nodes is not None else names
        self.context = context or Context()
        limit_malloc_arenas()  # before the executor's threads allocate
        if not self.context.ok():  # Ctrl-C is the caller's (KeyboardInterrupt), so that
            # the nodes are shut down while the context is still valid
            rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.nodes = {}
        for name in names:
            values = {**params.get(name, {}), **(overrides or {}).get(name, {})}
            node = node_class(name)(
                context=self.context, namespace=namespace,
                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
            self.nodes[name] = node
            self.executor.add_node(node)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.error: Exception | None = None
        self.watchdog: Watchdog | None = None
        if watchdog_timeout_s > 0:
            self.watchdog = Watchdog(self._watched_nodes, watchdog_timeout_s,
                                     self._executor_alive, self._stalled(on_stall))

    def add_node(self, node) -> None:
        """Spin an extra node (a recorder, a test probe) on the same executor."""
        self.executor.add_node(node)

    def start_with_probe(self, name: str, make_probe: Callable[[Any], Any]) -> Any:
        """Add a node ``name`` built into a probe by ``make_probe(node)`` (it subscribes
        what it watches), start spinning, and return the probe; the node is destroyed with
        the others at :meth:`shutdown`."""
        from rclpy.node import Node

        node = Node(name, context=self.context)
        probe = make_probe(node)
        self.add_node(node)
        self.start()
        return probe

    def start(self) -> Bringup:
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        if self.watchdog is not None:
            self.watchdog.start()
        return self

    def _watched_nodes(self) -> list:
        return [n for n in self.executor.get_nodes() if hasattr(n, "stall_reason")]

    def _executor_alive(self) -> bool:
        return self._stopping or (self._thread is not None and self._thread.is_alive())

    def _stalled(self, on_stall: Callable[[str], None]) -> Callable[[str], None]:
        def stalled(reason: str) -> None:
            if self.error is None:
                self.error = RuntimeError(reason)
            on_stall(reason)
        return stalled

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as exc:  # noqa: BLE001 - reported by run_for unless we are stopping
            if not self._stopping:
                self.error = exc
                print(f"perception bringup: the executor stopped: {exc!r}", file=sys.stderr)

    def run_for(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Spin for ``seconds`` (``inf``: until ``stop`` is set, Ctrl-C or shutdown), in this
        thread when not started.

        Raises:
            RuntimeError: the executor thread ended with an exception (every node stopped),
                or the watchdog found a stall and ``on_stall`` returned.
        """
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.context.ok() and \
                not (stop is not None and stop.is_set()):
            if self._thread is None:
                self.executor.spin_once(timeout_sec=0.1)
                continue
            if not self._thread.is_alive() or self.error is not None:
                break
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
        if self.error is not None:
            raise RuntimeError(f"the executor stopped: {self.error!r}") from self.error

    def stop(self) -> None:
        """Stop spinning (no more callbacks); nodes stay until :meth:`shutdown`."""
        self._stopping = True
        if self.watchdog is not None:
            self.watchdog.stop()
        self.executor.shutdown(timeout_sec=2.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        # rclpy 7's Executor.shutdown does not wait for callbacks still running in the
        # multi-threaded executor's pool (a pick's physics, a model call); one that publishes
        # after the context is gone fails ("publisher's context is invalid"), so wait here
        pool = getattr(self.executor, "_executor", None)
        if pool is not None:
            pool.shutdown(wait=True)

    def shutdown(self) -> None:
        self.stop()
        for node in list(self.executor.get_nodes()):
            if hasattr(node, "trigger_shutdown"):  # lifecycle: release models, devices, sims
                node.trigger_shutdown()
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> Bringup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
