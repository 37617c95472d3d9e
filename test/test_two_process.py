"""Images across two processes over real DDS (the transport benchmark's peer)."""

import subprocess
import sys
import time

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from perception_nodes.eval.transport_peer import pattern
from perception_nodes.ros.image_conversion import image_to_numpy
from perception_nodes.ros.qos import qos_by_name


def test_frames_from_another_process_arrive_intact(ros_context):
    node = Node("two_process_sub", context=ros_context)
    got = []
    node.create_subscription(Image, "bench/image", got.append, qos_by_name("reliable"))
    peer = subprocess.Popen(
        [sys.executable, "-m", "perception_nodes.eval.transport_peer", "--width", "64",
         "--height", "48", "--seconds", "1.0", "--rate", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    end = time.monotonic() + 30
    while peer.poll() is None and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    sent = int(peer.communicate(timeout=10)[0].strip())
    node.destroy_node()
    assert peer.returncode == 0
    assert len(got) >= 5 and sent >= len(got)
    np.testing.assert_array_equal(image_to_numpy(got[-1]), pattern(64, 48))
    seq = [int(m.header.frame_id) for m in got]
    assert seq == sorted(seq)  # reliable, in order
