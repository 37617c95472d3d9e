"""A rig that sends hostile messages at a running node and checks it survives each: the
message is counted as malformed (or, for valid but adversarial input, processed), nothing
raises inside the node, and the next valid frame is processed."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.messages import camera_info_msg

FRAME = "camera_color_optical_frame"
# what grasp_capture subscribes to
CAPTURE_INPUTS = {"camera/color/image_raw": Image, "camera/color/camera_info": CameraInfo,
                  "camera/pose": PoseStamped, "arm/pick_request": PoseStamped,
                  "arm/suction_gauge": Float32MultiArray}


def image(array: np.ndarray, encoding: str) -> Image:
    msg = numpy_to_image(array, encoding)
    msg.header.frame_id = FRAME
    return msg


def info(intrinsics: PinholeIntrinsics) -> CameraInfo:
    msg = camera_info_msg(intrinsics, image(np.zeros((1, 1), np.uint8), "mono8").header)
    return msg


def with_k(msg: CameraInfo, **values: float) -> CameraInfo:
    """``msg`` with K entries replaced: fx, fy, cx, cy."""
    msg = copy.deepcopy(msg)
    k = list(msg.k)
    for name, value in values.items():
        k[{"fx": 0, "fy": 4, "cx": 2, "cy": 5}[name]] = value
    msg.k = k
    return msg


def raw(msg: Image, **fields) -> Image:
    """A copy of ``msg`` with header-independent fields overwritten (data, step, ...)."""
    msg = copy.deepcopy(msg)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


class HostileRig:
    """``node`` spun with a probe that publishes on ``inputs`` ``{topic: type}``."""

    def __init__(self, context, node, inputs: dict[str, type], qos: int = 10) -> None:
        self.node = node
        self.probe = Node(f"hostile_probe_{node.get_name()}", context=context)
        self.pubs = {t: self.probe.create_publisher(m, t, qos) for t, m in inputs.items()}
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.executor.add_node(self.probe)
        self.stamp = 100
        self.spin_until(lambda: min(p.get_subscription_count() for p in self.pubs.values()))

    def spin_until(self, done: Callable[[], bool], seconds: float = 20.0) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if done():
                return True
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def counter(self, name: str) -> int:
        return self.node.health.counters.get(name, 0)

    def send(self, msgs: dict[str, object]) -> None:
        """Publish ``msgs`` (copies) with one new stamp in every header."""
        self.stamp += 1
        for topic, msg in msgs.items():
            msg = copy.deepcopy(msg)
            if hasattr(msg, "header"):
                msg.header.stamp.sec = self.stamp
            self.pubs[topic].publish(msg)

    def survives(self, hostile: dict[str, object], valid: dict[str, object],
                 outcome: str = "malformed", output: str = "published") -> None:
        """Send ``hostile``; it must raise ``outcome``'s counter (``malformed``, or
        ``published`` for valid but adversarial input) and no callback error; then
        ``valid`` must raise ``output``'s counter."""
        before = {k: self.counter(k) for k in ("malformed", outcome, "callback_errors")}
        self.send(hostile)
        assert self.spin_until(lambda: self.counter(outcome) > before[outcome]), \
            f"no {outcome} count (last error: {self.node.health.last_error!r})"
        assert self.counter("callback_errors") == before["callback_errors"], \
            self.node.health.last_error
        if outcome != "malformed":
            assert self.counter("malformed") == before["malformed"], \
                self.node.health.last_error
        done = self.counter(output)
        self.send(valid)
        assert self.spin_until(lambda: self.counter(output) > done), \
            f"the next valid frame was not processed ({self.node.health.last_error!r})"

    def close(self) -> None:
        self.node.destroy_node()
        self.probe.destroy_node()
