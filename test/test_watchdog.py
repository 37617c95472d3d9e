"""A hung callback or a dead executor never leaves a silent live process: the watchdog
reports ERROR on /diagnostics and the process exits with status 3 for its supervisor."""

import os
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Int32

from perception_nodes.bringup import Bringup
from perception_nodes.ros.managed_node import ManagedNode
from perception_nodes.ros.watchdog import EXIT_STALLED, Watchdog

HERE = Path(__file__).parent


class Hanger(ManagedNode):
    """Sleeps ``msg.data`` seconds in its callback: a planner that hangs on one input."""

    def __init__(self, **kwargs) -> None:
        self.done: list[int] = []
        super().__init__("hanger", **kwargs)

    def configure_io(self) -> None:
        self.create_subscription(Int32, "hang_for_s", self._on_number, 10)

    def _on_number(self, msg: Int32) -> None:
        time.sleep(msg.data)
        self.done.append(msg.data)


class Quiet:
    def stall_reason(self, timeout_s: float) -> str:
        return ""


def test_watchdog_names_a_dead_executor():
    dog = Watchdog(lambda: [Quiet()], 1.0, executor_alive=lambda: False, on_stall=print)
    assert "executor stopped" in dog.check()
    assert Watchdog(lambda: [Quiet()], 1.0, executor_alive=lambda: True).check() == ""


def test_a_callback_running_over_the_timeout_is_a_stall(ros_context):
    node = Hanger(context=ros_context, parameter_overrides=[
        Parameter("watchdog_timeout_s", value=0.0)])
    node._in_flight[1] = ("Hanger._on_number", time.monotonic() - 5.0)
    assert "callback Hanger._on_number has run for 5 s" in node.stall_reason(2.0)
    assert node.stall_reason(10.0) == ""
    node._in_flight.clear()
    node.heartbeat -= 20.0  # no diagnostics timer for 20 s: the executor is not spinning
    assert "no callback has run for 20 s" in node.stall_reason(10.0)
    node.destroy_node()


def test_bringup_watchdog_reports_a_hung_node_and_run_for_raises(ros_context):
    stalls: list[str] = []
    bringup = Bringup(nodes=[], context=ros_context, watchdog_timeout_s=0.8,
                      on_stall=stalls.append)
    node = Hanger(context=ros_context, parameter_overrides=[
        Parameter("diagnostics_period_s", value=0.1)])
    probe = Node("hang_probe", context=ros_context)
    diags: list = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    pub = probe.create_publisher(Int32, "hang_for_s", 10)
    bringup.add_node(node)
    bringup.add_node(probe)
    bringup.start()
    end = time.monotonic() + 20
    while not pub.get_subscription_count() and time.monotonic() < end:
        time.sleep(0.05)
    pub.publish(Int32(data=3))
    try:
        bringup.run_for(20.0)
        raised = ""
    except RuntimeError as exc:
        raised = str(exc)
    finally:
        time.sleep(0.3)  # the ERROR report reaches the probe
        bringup.shutdown()
    assert len(stalls) == 1 and "callback Hanger._on_number has run for" in stalls[0]
    assert "Hanger._on_number" in raised
    errors = [s for d in diags for s in d.status
              if s.name == "perception: hanger" and s.level == DiagnosticStatus.ERROR]
    assert errors and "stalled, restarting" in errors[-1].message


def test_a_node_process_with_a_hung_callback_exits_with_status_3():
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    code = ("import sys; from test_watchdog import Hanger; "
            "from perception_nodes.ros.managed_node import run_node; "
            "sys.exit(run_node(Hanger, ['--ros-args', '-p', 'watchdog_timeout_s:=1.0']))")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                            text=True)
    context = Context()
    rclpy.init(context=context)
    probe = Node("hang_sender", context=context)
    pub = probe.create_publisher(Int32, "hang_for_s", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    try:
        end = time.monotonic() + 60
        while not pub.get_subscription_count() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        # volatile: a message sent before the node's reader matched this writer is lost,
        # so send until the node hangs on one
        while proc.poll() is None and time.monotonic() < end:
            pub.publish(Int32(data=30))
            executor.spin_once(timeout_sec=0.5)
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
    stderr = proc.stderr.read()
    assert rc == EXIT_STALLED, stderr
    assert "callback Hanger._on_number has run for" in stderr
