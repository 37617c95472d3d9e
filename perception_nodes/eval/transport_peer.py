"""The second process of the transport benchmark and the cross-process test.

Publishes ``bench/image`` (rgb8, a seeded pattern) as fast as it can, or at ``--rate``, for
``--seconds``; each header carries the wall-clock send time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.qos import qos_by_name


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The seeded ``(H, W, 3) uint8`` image both processes agree on."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=0.0, help="Hz; 0 = as fast as possible")
    ap.add_argument("--qos", default="reliable")
    ap.add_argument("--wait-subscriber", type=float, default=10.0)
    args = ap.parse_args(argv)
    rclpy.init()
    node = Node("transport_peer")
    pub = node.create_publisher(Image, "bench/image", qos_by_name(args.qos))
    msg = numpy_to_image(pattern(args.width, args.height), "rgb8")
    deadline = time.monotonic() + args.wait_subscriber
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let discovery settle both ways
    end = time.monotonic() + args.seconds
    sent = 0
    while time.monotonic() < end:
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 10**9)
        msg.header.frame_id = str(sent)
        pub.publish(msg)
        sent += 1
        if args.rate > 0:
            time.sleep(max(0.0, 1.0 / args.rate - (time.time_ns() - now) * 1e-9))
    print(sent, flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
