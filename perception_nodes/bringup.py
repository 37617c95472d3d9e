"""Run the configured nodes in one process on a multi-threaded executor.

The in-process twin of ``launch/bringup.launch.py`` (a component container's role): the same
parameter file, the same node list, ``name:=value`` style overrides per node.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from perception_nodes.registry import node_class

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACKAGE_ROOT / "config" / "perception.yaml"


def load_config(path: Path | str = DEFAULT_CONFIG) -> tuple[list[str], dict[str, dict]]:
    """Read a parameter file: ``(node names to start, {node: {param: value}})``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    params = {name: (section or {}).get("ros__parameters", {}) for name, section in data.items()}
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
    """Nodes plus their executor, in a context of their own; spin in a background thread."""

    def __init__(self, config: Path | str = DEFAULT_CONFIG, nodes: list[str] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None,
                 context: Context | None = None) -> None:
        names, params = load_config(config)
        names = nodes if nodes is not None else names
        self.context = context or Context()
        if not self.context.ok():
            rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.nodes = {}
        for name in names:
            values = {**params.get(name, {}), **(overrides or {}).get(name, {})}
            node = node_class(name)(
                context=self.context,
                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
            self.nodes[name] = node
            self.executor.add_node(node)
        self._thread: threading.Thread | None = None

    def add_node(self, node) -> None:
        """Spin an extra node (a recorder, a test probe) on the same executor."""
        self.executor.add_node(node)

    def start(self) -> Bringup:
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the spin; nothing to recover
            pass

    def run_for(self, seconds: float) -> None:
        """Spin for ``seconds`` (in this thread when not started)."""
        end = time.monotonic() + seconds
        if self._thread is None:
            while time.monotonic() < end and self.context.ok():
                self.executor.spin_once(timeout_sec=0.1)
        else:
            time.sleep(max(0.0, end - time.monotonic()))

    def stop(self) -> None:
        """Stop spinning (no more callbacks); nodes stay until :meth:`shutdown`."""
        self.executor.shutdown(timeout_sec=2.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def shutdown(self) -> None:
        self.stop()
        for node in list(self.executor.get_nodes()):
            if hasattr(node, "release_io"):
                node.release_io()
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> Bringup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
