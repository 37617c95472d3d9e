"""grasp_capture: before/after images of each grasp, kept as self-supervised training data
(grasp self-supervision Sec. III-A).

Keeps the newest ``buffer_frames`` frames of ``camera/color/image_raw``, each matched with
``camera/color/camera_info`` of its stamp. A pick request (``arm/pick_request``,
PoseStamped in the camera optical frame, or in the frame of the newest ``camera/pose``, the
camera's pose in the cell's world) freezes the newest frame as
*before* (the arm has not entered the view yet); the suction gauge (``arm/suction_gauge``,
kPa per cup, after the lift) marks the arm gone and starts the watch for the first stable
frame, *after*. Cups reading at least ``held_kpa`` are the active ones: their footprint
projected into the image is the grasp mask, and the grasp succeeded only if one of them held.
Samples go to ``dataset_dir`` through :class:`GraspDatasetWriter` (never a partial sample);
failed grasps are kept only with ``keep_failed``. With ``record_depth`` the registered
depth of the before frame's stamp (``camera/depth/image_raw``) and the camera matrix are
stored too: what adapting a model that reads height (RGB-H) needs; a before frame whose depth
never came is stored without it (counted ``before_without_depth``). One pick at a time: a new
request while one is pending drops the old one (counted).
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from perception_nodes.capture.grasp_dataset import (
    DatasetWriteError,
    GraspDatasetWriter,
    GraspSample,
)
from perception_nodes.capture.pick_window import FrameRing, StableFrameWatch
from perception_nodes.core.camera_model import invert_pose
from perception_nodes.core.conventions import CAMERA_FRAME
from perception_nodes.core.grasp_geometry import cup_footprint_mask
from perception_nodes.core.grasp_regions import GripperLayout
from perception_nodes.ros.grasp_messages import DEFAULT_CUPS, parse_pairs
from perception_nodes.ros.image_conversion import (
    DEPTH_RANGE_M,
    ImageConversionError,
    image_to_depth_m,
    image_to_rgb,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import (
    intrinsics_from_camera_info,
    matrix_from_pose_msg,
    stamp_ns,
)
from perception_nodes.ros.params import Param, ParameterValueError
from perception_nodes.ros.sync import Subscriber


class GraspCaptureNode(ManagedNode):
    PARAMS = (
        Param("dataset_dir", "data/grasps", "folder of the grasp dataset (manifest.json, "
              "samples/)"),
        Param("buffer_frames", 30, "newest camera frames kept in memory", min=1, max=1000),
        Param("held_kpa", 40.0, "a cup reading at least this vacuum held (kPa)", min=0.1,
              max=101.0),
        Param("stable_difference", 4.0, "an after frame differs from the one before it by "
              "less than this mean grey level (scene settled); above the camera's noise "
              "(about 2.3 between two frames of the sim)", min=0.0, max=255.0),
        Param("max_wait_frames", 10, "take the after frame at the latest this many frames "
              "after the gauge", min=1, max=1000),
        Param("keep_failed", False, "also store grasps that held nothing"),
        Param("record_depth", True, "store the before frame's registered depth and camera "
              "matrix (camera/depth/image_raw): adapting RGB-H models needs them",
              read_only=True),
        Param("min_free_mb", 100.0, "refuse samples that would leave less free disk (MB)",
              min=0.0, max=1e7),
        Param("cup_offsets_m", DEFAULT_CUPS, "cup centres 'x,y; ...' in the gripper frame "
              "(m), in gauge order"),
        Param("cup_radius_m", GripperLayout().cup_radius_m, "suction cup radius (m)",
              min=0.001, max=0.1),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("grasp_capture", **kwargs)

    def check_params(self, params: dict) -> None:
        try:
            self.cups = parse_pairs(params["cup_offsets_m"])
        except ValueError as exc:
            raise ParameterValueError(str(exc)) from exc
        if len(self.cups) == 0:
            raise ParameterValueError("cup_offsets_m lists no cup")

    def configure_io(self) -> None:
        p = self.params
        self.writer = GraspDatasetWriter(p["dataset_dir"], p["min_free_mb"])
        self.ring = FrameRing(p["buffer_frames"])
        self.info: CameraInfo | None = None
        self.pending: dict | None = None
        self.health.info["dataset_samples"] = str(len(self.writer))
        q = self.sub_qos
        self.sync = self.synchroniser([Subscriber(self, Image, "camera/color/image_raw", q),
                                       Subscriber(self, CameraInfo, "camera/color/camera_info",
                                                  q)], 10)
        self.sync.registerCallback(self._on_frame)
        self.depths = FrameRing(p["buffer_frames"])
        if p["record_depth"]:
            self.create_subscription(Image, "camera/depth/image_raw", self._on_depth, q)
        # (the camera's parent frame, the transform from it into the camera optical frame)
        self.camera_pose: tuple[str, np.ndarray] | None = None
        self.create_subscription(PoseStamped, "camera/pose", self._on_camera_pose, q)
        self.create_subscription(PoseStamped, "arm/pick_request", self._on_request, 10)
        self.create_subscription(Float32MultiArray, "arm/suction_gauge", self._on_gauge, 10)

    def _on_frame(self, msg: Image, info: CameraInfo) -> None:
        """A frame and the camera info of its stamp (the info a grasp's mask is projected
        with is the one of its before frame's stamp or newer)."""
        if not self.active:
            return
        self.info = info
        try:
            rgb = image_to_rgb(msg)
        except ImageConversionError as exc:
            self.health.malformed(str(exc))
            return
        self.health.count("received")
        self.ring.push(stamp_ns(msg.header.stamp), rgb)
        pick = self.pending
        if pick is not None and pick.get("watch") is not None and pick["watch"].offer(rgb):
            self.pending = None
            self._store(pick, rgb)

    def _on_depth(self, msg: Image) -> None:
        # kept as received: only a pick's before frame is ever converted (a full-rate depth
        # conversion here cost the pipeline frames on 2 cores)
        if self.active:
            self.depths.push(stamp_ns(msg.header.stamp), msg)

    def _on_camera_pose(self, msg: PoseStamped) -> None:
        try:
            self.camera_pose = (msg.header.frame_id,
                                invert_pose(matrix_from_pose_msg(msg.pose)))
        except ValueError as exc:
            self.drop_malformed("camera pose", exc)

    def _pose_in_camera(self, msg: PoseStamped) -> np.ndarray:
        """The pick pose as a 4x4 transform in the camera optical frame; ValueError for a
        frame the node cannot relate to the camera."""
        pose = matrix_from_pose_msg(msg.pose)
        frame = msg.header.frame_id
        if frame in ("", CAMERA_FRAME, self.info.header.frame_id):
            return pose
        if self.camera_pose is not None and frame == self.camera_pose[0]:
            return self.camera_pose[1] @ pose
        known = [CAMERA_FRAME] + ([self.camera_pose[0]] if self.camera_pose else [])
        raise ValueError(f"pick pose in {frame!r}: no transform to the camera (known "
                         f"frames {known}; camera/pose gives the camera's)")

    def _on_request(self, msg: PoseStamped) -> None:
        newest = self.ring.newest()
        if not self.active or newest is None or self.info is None:
            self.health.count("request_without_frame")
            return
        if self.pending is not None:
            self.health.count("dropped")  # the previous pick never reported its gauge
        try:
            pose = self._pose_in_camera(msg)
            z = float(pose[2, 3])
            if not DEPTH_RANGE_M[0] <= z <= DEPTH_RANGE_M[1]:
                raise ValueError(f"pick pose {z:.3g} m along the optical axis: not in front "
                                 "of the camera within the depth a camera measures")
        except ValueError as exc:
            self.health.malformed(str(exc))
            return
        self.pending = {"stamp_ns": newest[0], "before": newest[1], "pose": pose,
                        "info": self.info, "watch": None}

    def _on_gauge(self, msg: Float32MultiArray) -> None:
        if self.pending is None:
            return
        vacuum = np.asarray(msg.data, np.float32)
        if vacuum.size != len(self.cups) or not np.isfinite(vacuum).all():
            self.health.malformed(f"gauge has {vacuum.size} values for {len(self.cups)} cups")
            self.pending = None
            return
        p = self.params
        self.pending["vacuum"] = vacuum
        self.pending["watch"] = StableFrameWatch(p["stable_difference"], p["max_wait_frames"])

    def _before_depth(self, stamp: int, shape: tuple[int, ...], intrinsics
                      ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The depth of the before frame's stamp and the camera matrix, or (None, None)."""
        if not self.params["record_depth"]:
            return None, None
        msg = self.depths.at(stamp)
        try:
            depth = None if msg is None else image_to_depth_m(msg, shape)
        except ImageConversionError as exc:
            self.health.malformed(f"before depth: {exc}")
            depth = None
        if depth is None:
            self.health.count("before_without_depth")
            return None, None
        return depth, intrinsics.matrix  # float32 m, as image_to_depth_m returns it

    def _store(self, pick: dict, after: np.ndarray) -> None:
        p = self.params
        active = pick["vacuum"] >= p["held_kpa"]
        success = bool(active.any())
        self.health.count("grasps")
        if not success:
            self.health.count("failed_grasps")
            if not p["keep_failed"]:
                return
        before = pick["before"]
        if after.shape != before.shape:
            self.health.malformed("after frame size differs from before")
            return
        try:
            intrinsics = intrinsics_from_camera_info(pick["info"], before.shape)
        except ValueError as exc:  # a pick seen through a camera_info that no camera sends
            self.health.malformed(f"pick not stored: {exc}")
            return
        mask = cup_footprint_mask(before.shape[:2], intrinsics, pick["pose"], self.cups,
                                  p["cup_radius_m"], active)
        if success and not mask.any():  # a footprint outside the image labels nothing
            self.health.malformed("pick not stored: the cup footprint lies outside the image")
            return
        sample = GraspSample(before, after, mask, pick["vacuum"], pick["pose"],
                             pick["stamp_ns"], success, int(active.sum()),
                             *self._before_depth(pick["stamp_ns"], before.shape, intrinsics))
        try:
            entry = self.writer.append(sample)
        except DatasetWriteError as exc:
            self.health.count("write_errors")
            self.health.last_error = str(exc)
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)
            return
        self.health.published()
        self.health.info["dataset_samples"] = str(len(self.writer))
        self.health.info["last_sample"] = entry["file"]


def main(args: list[str] | None = None) -> int:
    return run_node(GraspCaptureNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
