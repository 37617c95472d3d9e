"""Nodes as separate processes, started the way ``ros2 launch`` starts them.

``ros2 launch perception bringup.launch.py`` runs each node as
``NODE --ros-args -r __node:=NODE -r __ns:=NS --params-file CONFIG``; the benchmarks and the
cross-process tests do the same with ``python -m perception_nodes.nodes.NODE`` (or an
installed executable), so what they measure is what a robot runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def ros_args(name: str, config: Path | str | None = None, namespace: str = "",
             params: dict[str, Any] | None = None) -> list[str]:
    """``--ros-args`` as launch passes them: node name, namespace, parameter file, then
    ``-p name:=value`` overrides (values written as YAML scalars)."""
    args = ["--ros-args", "-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    if config:
        args += ["--params-file", str(config)]
    for key, value in (params or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{key}:={text}"]
    return args


class NodeProcess:
    """One child process; its combined output is collected by a reader thread.

    Args:
        command: the program and its arguments (e.g. from :func:`node_command`).
        env: environment (default: this process's).
        cwd: working directory.
    """

    def __init__(self, command: list[str], env: dict[str, str] | None = None,
                 cwd: Path | str | None = None) -> None:
        self.command = command
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Wait until ``needle`` appears in the output; False on timeout or exit."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.alive():
            if needle in self.output:
                return True
            time.sleep(0.1)
        return needle in self.output

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT, as Ctrl-C or launch does; killed if it does not exit. The exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


def node_command(name: str, config: Path | str | None = None, namespace: str = "",
                 params: dict[str, Any] | None = None) -> list[str]:
    """``python -m perception_nodes.nodes.NAME --ros-args ...`` for this interpreter."""
    return [sys.executable, "-m", f"perception_nodes.nodes.{name}",
            *ros_args(name, config, namespace, params)]


def start_nodes(names: list[str], config: Path | str | None = None, namespace: str = "",
                params: dict[str, dict[str, Any]] | None = None,
                env: dict[str, str] | None = None) -> dict[str, NodeProcess]:
    """Each node in its own process (``params``: per-node ``-p`` overrides)."""
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    return {name: NodeProcess(node_command(name, config, namespace, (params or {}).get(name)),
                              env=env) for name in names}


def start_one_process(names: list[str], config: Path | str | None = None,
                      params: dict[str, dict[str, Any]] | None = None,
                      env: dict[str, str] | None = None) -> NodeProcess:
    """The same nodes in one process (``perception bringup``, a component container's
    role)."""
    sets = [f"{node}.{key}:={str(value).lower() if isinstance(value, bool) else value}"
            for node, values in (params or {}).items() for key, value in values.items()]
    command = [sys.executable, "-m", "perception_nodes.cli", "bringup", "--nodes",
               ",".join(names)]
    if config:
        command += ["--config", str(config)]
    if sets:
        command += ["--set", *sets]
    return NodeProcess(command, env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
