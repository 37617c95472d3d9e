"""camera_ingest: one camera stream for the stack, from the simulated cell or real hardware.

Sources: ``sim`` (relays ``sim/color/*`` and ``sim/depth/*`` from sim_cell, exact-stamp
matched), ``driver`` (a ROS camera driver's colour, registered depth and camera_info topics,
named by parameters: rgb8, bgr8, rgba8, bgra8 or mono8 colour become rgb8, 16UC1 mm depth
becomes 32FC1 m, lens distortion is removed with maps built once per CameraInfo, and depth
of another size than colour is refused with what to enable in the driver), ``v4l2`` (a USB
camera), ``video`` (a file), ``folder`` (images). Publishes
``camera/color/image_raw`` rgb8, ``camera/color/camera_info`` and, when the source has depth,
``camera/depth/image_raw`` 32FC1 m, with the sensor-data QoS at ``rate_hz``; source ``sim``
also relays the camera's pose in the world frame (``sim/camera_pose``) as ``camera/pose``.
Frames are kept in a one-frame slot: a frame overwritten before it is published is dropped
and counted, so nothing queues without bound.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.conventions import CAMERA_FRAME
from perception_nodes.core.rectify import Rectifier
from perception_nodes.ingest.sources import SourceError, open_source
from perception_nodes.ros.image_conversion import (
    ImageConversionError,
    image_to_depth_m,
    image_to_numpy,
    image_to_rgb,
    numpy_to_image,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import (
    camera_info_msg,
    frame_age_s,
    intrinsics_from_camera_info,
)
from perception_nodes.ros.params import Param
from perception_nodes.ros.sync import Subscriber


class CameraIngestNode(ManagedNode):
    PARAMS = (
        Param("source", "sim", "where frames come from: the simulated cell, a ROS camera "
              "driver's topics, a V4L2 camera, a video file or a folder of images",
              choices=("sim", "driver", "v4l2", "video", "folder")),
        Param("driver_color_topic", "driver/color/image_raw", "source driver: the colour "
              "image (rgb8, bgr8, rgba8, bgra8 or mono8)"),
        Param("driver_depth_topic", "driver/depth/image_raw", "source driver: depth "
              "registered to the colour image (16UC1 mm or 32FC1 m); '' = no depth camera"),
        Param("driver_info_topic", "driver/color/camera_info", "source driver: the colour "
              "camera's CameraInfo (plumb_bob or rational_polynomial distortion is removed)"),
        Param("device", "0", "v4l2: camera index or /dev/videoN path"),
        Param("path", "", "video: file; folder: directory of images"),
        Param("loop", True, "video/folder: start again at the end"),
        Param("rate_hz", 10.0, "publish rate (Hz); 0 publishes each frame as it arrives",
              min=0.0, max=240.0),
        Param("width", 640, "v4l2: requested width (px)", min=16, max=8192),
        Param("height", 480, "v4l2: requested height (px)", min=16, max=8192),
        Param("fov_y_deg", 45.0, "uncalibrated sources: vertical field of view for CameraInfo",
              min=10.0, max=170.0),
        Param("frame_id", CAMERA_FRAME, "frame_id of published frames"),
        Param("sim_namespace", "sim", "source sim: prefix of sim_cell's camera topics"),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("camera_ingest", **kwargs)

    def check_params(self, params: dict) -> None:
        if params["source"] in ("video", "folder") and not params["path"]:
            from perception_nodes.ros.params import ParameterValueError

            raise ParameterValueError(f"source {params['source']!r} needs the 'path' parameter")

    def configure_io(self) -> None:
        p = self.params
        self.slot_lock = threading.Lock()
        self.slot: tuple | None = None  # (color, depth or None, info)
        self.stop = threading.Event()
        self.pub_rgb = self.create_publisher(Image, "camera/color/image_raw", self.pub_qos)
        self.pub_info = self.create_publisher(CameraInfo, "camera/color/camera_info",
                                              self.pub_qos)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", self.pub_qos)
        self.device = None
        self.rectifier, self.rectifier_key = None, None
        if p["source"] in ("sim", "driver"):
            ns = p["sim_namespace"]
            color, depth, info = (f"{ns}/color/image_raw", f"{ns}/depth/image_raw",
                                  f"{ns}/color/camera_info") if p["source"] == "sim" else (
                p["driver_color_topic"], p["driver_depth_topic"], p["driver_info_topic"])
            subs = [Subscriber(self, Image, color, self.sub_qos),
                    Subscriber(self, CameraInfo, info, self.sub_qos)]
            if depth:
                subs.append(Subscriber(self, Image, depth, self.sub_qos))
            self.sync = self.synchroniser(subs, 5)
            self.sync.registerCallback(self._on_camera_frame)
        if p["source"] == "sim":
            self.pub_pose = self.create_publisher(PoseStamped, "camera/pose", self.pub_qos)
            self.create_subscription(PoseStamped, f"{ns}/camera_pose", self._on_sim_pose,
                                     self.sub_qos)
        if p["source"] not in ("sim", "driver"):
            self.device = open_source(p["source"], p["device"], p["path"], p["width"],
                                      p["height"], p["loop"])
            # a camera unplugged or a video at its end: silent, so WARN then ERROR
            self.source_input = f"frames from the {p['source']} source"
            self.expect_input(self.source_input)
            self.grabber = threading.Thread(target=self._grab_loop, daemon=True)
            self.grabber.start()
        if p["rate_hz"] > 0:
            self.timer = self.create_timer(1.0 / p["rate_hz"], self._publish_slot)
        self.health.info["source"] = p["source"]

    def release_io(self) -> None:
        if getattr(self, "stop", None) is not None:
            self.stop.set()
        if getattr(self, "device", None) is not None:
            self.grabber.join(timeout=2.0)
            self.device.close()
            self.device = None

    def _put(self, frame: tuple) -> None:
        self.health.count("received")
        with self.slot_lock:
            if self.slot is not None:
                self.health.count("dropped")
            self.slot = frame
        if self.params["rate_hz"] == 0:
            self._publish_slot()

    def _on_camera_frame(self, color: Image, info: CameraInfo, depth: Image | None = None
                         ) -> None:
        """A camera's frame as the stack's contract has it: rgb8, depth 32FC1 metres
        registered to colour, no lens distortion; messages already so are relayed as they
        are (the simulated cell's), others converted."""
        try:
            rgb = image_to_rgb(color)
            raw_depth = None if depth is None else image_to_numpy(depth)
            if raw_depth is not None and raw_depth.shape[:2] != rgb.shape[:2]:
                raise ImageConversionError(
                    f"depth {raw_depth.shape[1]}x{raw_depth.shape[0]} is not registered to the "
                    f"colour image {rgb.shape[1]}x{rgb.shape[0]}: publish depth aligned to "
                    "colour (RealSense: align_depth.enable:=true; Orbbec: "
                    "depth_registration:=true) or register it first")
            intrinsics_from_camera_info(info, rgb.shape)
            rectifier = self._rectifier_for(info)
            relay = rectifier.identity and color.encoding == "rgb8" and \
                (depth is None or depth.encoding == "32FC1")
            # converted only when the frame is not already in the contract's form
            depth_m = None if relay or depth is None else image_to_depth_m(depth)
        except ValueError as exc:  # ImageConversionError included
            self.drop_malformed("camera frame", exc)
            return
        header = color.header
        header.frame_id = self.params["frame_id"]
        if relay:
            out = (color, depth, info)
        else:
            out = (numpy_to_image(rectifier.colour(rgb), "rgb8", header),
                   None if depth_m is None else
                   numpy_to_image(rectifier.depth(depth_m), "32FC1", header),
                   camera_info_msg(rectifier.intrinsics, header))
        for msg in out:
            if msg is not None:
                msg.header.frame_id = header.frame_id
        self._put(out)

    def _rectifier_for(self, info: CameraInfo) -> Rectifier:
        """Undistortion maps of this CameraInfo, built when it changes (not per frame)."""
        key = (tuple(info.k), tuple(info.d), info.distortion_model, tuple(info.p),
               info.width, info.height)
        if key != self.rectifier_key:
            self.rectifier = Rectifier(np.asarray(info.k), np.asarray(info.d),
                                       info.distortion_model, (info.height, info.width),
                                       np.asarray(info.p).reshape(3, 4)[:, :3])
            self.rectifier_key = key
            self.health.info["rectified"] = str(not self.rectifier.identity).lower()
        return self.rectifier

    def _on_sim_pose(self, msg: PoseStamped) -> None:
        """The camera's pose in the cell's world frame (moves with each randomized scene),
        relayed for nodes that take poses in that frame (grasp_capture)."""
        if self.active:
            self.pub_pose.publish(msg)

    def _grab_loop(self) -> None:
        p = self.params
        intrinsics = None
        while not self.stop.is_set():
            try:
                rgb = self.device.read()
            except SourceError as exc:
                self.health.last_error = str(exc)
                self.get_logger().error(str(exc), throttle_duration_sec=5.0)
                time.sleep(0.5)
                continue
            if rgb is None:  # end of a file source
                self.health.info["source_state"] = "ended"
                time.sleep(0.05)
                continue
            self.health.heard(self.source_input)
            self.health.info["source_state"] = "streaming"
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=p["frame_id"])
            if intrinsics is None or (intrinsics.width, intrinsics.height) != rgb.shape[1::-1]:
                intrinsics = PinholeIntrinsics.from_fov(rgb.shape[1], rgb.shape[0],
                                                        p["fov_y_deg"])
            self._put((numpy_to_image(rgb, "rgb8", header), None,
                       camera_info_msg(intrinsics, header)))
            if p["rate_hz"] > 0 and getattr(self.device, "is_file", True):
                time.sleep(1.0 / p["rate_hz"])  # files play at rate; cameras at their own

    def _publish_slot(self) -> None:
        if not self.should_process():
            return
        with self.slot_lock:
            frame, self.slot = self.slot, None
        if frame is None:
            return
        color, depth, info = frame
        self.pub_rgb.publish(color)
        self.pub_info.publish(info)
        if depth is not None:
            self.pub_depth.publish(depth)
        self.health.published(latency_s=frame_age_s(self.get_clock().now().nanoseconds,
                                                    color.header.stamp))


def main(args: list[str] | None = None) -> int:
    return run_node(CameraIngestNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
