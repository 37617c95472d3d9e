"""An unexpected exception in a callback is logged, counted and survived: the next message is
processed and diagnostics say WARN with the reason."""

import time

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Int32

from perception_nodes.ros.managed_node import ManagedNode


class Fragile(ManagedNode):
    """Divides 100 by every number it receives: a 0 raises ZeroDivisionError."""

    def __init__(self, **kwargs) -> None:
        self.results: list[float] = []
        super().__init__("fragile", **kwargs)

    def configure_io(self) -> None:
        self.create_subscription(Int32, "numbers", self._on_number, 10)

    def _on_number(self, msg: Int32) -> None:
        self.results.append(100 / msg.data)


def test_a_failing_callback_is_counted_and_the_next_message_processed(ros_context):
    node = Fragile(context=ros_context)
    probe = Node("fragile_probe", context=ros_context)
    pub = probe.create_publisher(Int32, "numbers", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    end = time.monotonic() + 20
    while not pub.get_subscription_count() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    for value in (4, 0, 5):
        pub.publish(Int32(data=value))
    while len(node.results) < 2 and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    assert node.results == [25.0, 20.0]  # the 0 failed; the executor went on to the 5
    assert node.health.counters["callback_errors"] == 1
    status = node.health.status("fragile")
    assert status.level == DiagnosticStatus.WARN and "ZeroDivisionError" in status.message
    node.destroy_node()
    probe.destroy_node()
