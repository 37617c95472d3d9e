"""The managed-node base: enable service and max_fps on a frame-processing node."""

import time

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from perception_nodes.ros.managed_node import ManagedNode


class CountingNode(ManagedNode):
    PROCESSES_FRAMES = True

    def __init__(self, **kwargs):
        super().__init__("counting", **kwargs)

    def configure_io(self):
        self.processed = 0

    def on_frame(self):
        if self.should_process():
            self.processed += 1


def test_enable_service_and_max_fps_gate_processing(ros_context):
    node = CountingNode(context=ros_context,
                        parameter_overrides=[Parameter("max_fps", value=20.0)])
    client_node = Node("client", context=ros_context)
    client = client_node.create_client(SetBool, "counting/enable")
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(client_node)
    assert client.wait_for_service(timeout_sec=10.0)

    start = time.monotonic()
    for _ in range(100):  # offered at about 400/s; max_fps keeps at most 20/s
        node.on_frame()
        time.sleep(0.0025)
    elapsed = time.monotonic() - start
    assert 1 <= node.processed <= 20 * elapsed + 1
    assert node.health.counters["dropped"] == 100 - node.processed

    future = client.call_async(SetBool.Request(data=False))
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    assert future.result().success and not node.enabled
    before = node.processed
    time.sleep(0.1)
    node.on_frame()
    assert node.processed == before
    node.destroy_node()
    client_node.destroy_node()
