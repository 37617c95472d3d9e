"""`perception replay` and `perception record` as separate processes over DDS."""

import json
import subprocess
import sys
import time
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String

from perception_nodes.ros.bags import read_bag
from perception_nodes.ros.qos import qos_by_name

BAG = Path(__file__).parent / "data" / "sim_cell_bag"
CLI = [sys.executable, "-m", "perception_nodes.cli"]


def _spin_while(executor, proc, timeout=60):
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(20):
        executor.spin_once(timeout_sec=0.01)


def test_replay_publishes_the_bag_to_another_process(ros_context):
    node = Node("replay_sub", context=ros_context)
    got = []
    node.create_subscription(Image, "/sim/instance_labels", got.append,
                             qos_by_name("reliable"))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    proc = subprocess.Popen(CLI + ["replay", str(BAG), "--rate", "4", "--delay", "0.5",
                                   "--wait-subscribers", "30",
                                   "--topics", "/sim/instance_labels"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _spin_while(executor, proc)
    assert proc.returncode == 0
    recorded = [deserialize_message(raw, Image)
                for *_, raw in read_bag(BAG, ["/sim/instance_labels"])]
    assert json.loads(proc.stdout.read().strip().splitlines()[-1])["published"] == len(recorded)
    assert got == recorded
    node.destroy_node()


def test_record_cli_captures_live_topics(ros_context, tmp_path):
    node = Node("record_pub", context=ros_context)
    pub = node.create_publisher(String, "/cli_test/chatter", qos_by_name("reliable"))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    out = tmp_path / "rec"
    proc = subprocess.Popen(CLI + ["record", str(out), "/cli_test/chatter", "--duration", "4",
                                   "--discovery-s", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    end = time.monotonic() + 60
    sent = 0
    while proc.poll() is None and time.monotonic() < end:
        if pub.get_subscription_count():
            pub.publish(String(data=f"msg {sent}"))
            sent += 1
        executor.spin_once(timeout_sec=0.05)
    assert proc.returncode == 0 and sent > 5
    data = [deserialize_message(raw, String).data
            for *_, raw in read_bag(out, ["/cli_test/chatter"])]
    index = [int(d.split()[1]) for d in data]
    assert len(index) >= 5 and index == list(range(index[0], index[0] + len(index)))
    node.destroy_node()
