"""grasp_regions: where the arm may grasp, and the ranked suction grasps (Latent-MaskRCNN
Sec. V-E).

Subscribes, all through one exact-stamp synchroniser (a frame is planned only when every
input of its stamp arrived; drops are counted in diagnostics): ``segmentation/instance_labels``
(mono16), ``segmentation/confidence`` (32FC1), ``segmentation/instance_scores`` (32FC1, 1 x N),
``segmentation/sample_labels`` (16UC(k) on the model grid), ``depth_topic`` (32FC1 m or 16UC1
mm: the depth camera's ``camera/depth/image_raw``, or in a cell without one the depth node's
``camera/depth_mono/image_raw``) and ``camera/color/camera_info``. Publishes with the labels'
header (camera optical frame):
``grasp/safe_regions`` mono16 (the instance label where a safe footprint centre lies),
``grasp/candidates`` PoseArray best first (z along the surface normal, out of the surface),
``grasp/candidate_info`` 32FC1, one row per pose in the same order with the columns of
``INFO_COLUMNS`` (a single NaN row when there is no candidate), and ``grasp/markers``; with
``base_frame`` also ``grasp/candidates_base``, the same poses in the robot's base frame
(``camera_pose_in_base``, the hand-eye calibration, or tf2 where it is installed).
With ``exclude_anomalies`` the anomaly node's ``anomaly/instance_labels`` of the same stamp
joins the synchronised inputs and no cup goes on a foreign object.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from perception_nodes.core.grasp_regions import (
    INFO_COLUMNS,  # noqa: F401 - the topic's columns, imported by users of the node
    GraspParams,
    GripperLayout,
    candidate_table,
    plan_grasps,
)
from perception_nodes.ros.calibration import (
    calibration_camera_param,
    calibration_check,
    parse_floor_calibration,
)
from perception_nodes.ros.grasp_messages import DEFAULT_CUPS, candidate_markers, parse_pairs
from perception_nodes.ros.image_conversion import (
    ImageConversionError,
    image_to_array,
    image_to_depth_m,
    numpy_to_image,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import intrinsics_from_camera_info, pose_msg
from perception_nodes.ros.params import Param, ParameterValueError
from perception_nodes.ros.robot_frames import TfCameraPose, parse_pose, to_base
from perception_nodes.ros.sync import Subscriber


class GraspRegionsNode(ManagedNode):
    PROCESSES_FRAMES = True
    PARAMS = (
        Param("cup_offsets_m", DEFAULT_CUPS, "cup centres 'x,y; x,y; ...' in the gripper "
              "frame (m), the first at 0,0"),
        Param("cup_radius_m", GripperLayout().cup_radius_m, "suction cup radius (m)",
              min=0.001, max=0.1),
        Param("stroke_m", GripperLayout().stroke_m, "bellows stroke past first contact (m)",
              min=0.001, max=0.1),
        Param("max_plane_rms_m", 0.003, "roughest patch a cup seals on (m rms)", min=0.0,
              max=0.05),
        Param("max_tilt_deg", 35.0, "steepest surface a cup seals on (deg)", min=0.0,
              max=89.0),
        Param("clearance_m", 0.005, "a cup off the item clears other surfaces by stroke + "
              "this (m)", min=0.0, max=0.1),
        Param("yaw_steps", 4, "gripper yaws tried over yaw_period_deg", min=1, max=36),
        Param("yaw_period_deg", 90.0, "the cup layout's rotational period (deg)", min=1.0,
              max=360.0),
        Param("stride_px", 1, "footprint centres tried every stride pixels", min=1, max=16),
        Param("max_candidates", 10, "candidates published (one per instance)", min=1,
              max=100),
        Param("max_risk", 0.5, "drop candidates whose double-pick risk exceeds this",
              min=0.0, max=1.0),
        Param("min_confidence", 0.0, "pixels with less sample agreement are not centres",
              min=0.0, max=1.0),
        Param("workspace_polygon", "", "tray floor 'u,v; u,v; ...' as fractions of the image "
              "width and height, from calibration; no cup outside it ('' = whole image)"),
        Param("exclude_anomalies", False, "wait for anomaly/instance_labels of each frame "
              "and put no cup on a foreign object (needs the anomaly node)"),
        Param("floor_plane", "", "the bin floor 'nx,ny,nz,d' in the camera optical frame "
              "from calibration: only what stands min_height_m above it is an item ('' = "
              "no floor rule)"),
        calibration_camera_param(),
        Param("base_frame", "", "also publish grasp/candidates_base: the candidates in this "
              "frame (the robot's base), '' = camera frame only"),
        Param("camera_pose_in_base", "", "the camera optical frame's pose in base_frame, "
              "'x,y,z,qx,qy,qz,qw' (m) from your hand-eye calibration; '' = look it up in "
              "tf2 (a static transform), where tf2_ros is installed"),
        Param("min_height_m", 0.01, "with floor_plane: a pixel is an item only this high "
              "above the floor (m)", min=0.0, max=0.2),
        Param("depth_topic", "camera/depth/image_raw", "depth image to plan on: the depth "
              "camera's, or camera/depth_mono/image_raw from the depth node",
              choices=("camera/depth/image_raw", "camera/depth_mono/image_raw")),
    )

    # applied per frame through check_params' layout, workspace and GraspParams
    LIVE_PARAMS = frozenset(p.name for p in PARAMS) - {"depth_topic", "exclude_anomalies",
                                                        "base_frame", "camera_pose_in_base"}

    def __init__(self, **kwargs) -> None:
        super().__init__("grasp_regions", **kwargs)

    def check_params(self, params: dict) -> None:
        try:
            cups = parse_pairs(params["cup_offsets_m"])
            self.layout = GripperLayout(tuple(map(tuple, cups)), params["cup_radius_m"],
                                        params["stroke_m"])
        except ValueError as exc:
            raise ParameterValueError(str(exc)) from exc
        self.floor_plane, self.outside_workspace = parse_floor_calibration(
            params, optional_plane=True)
        self.calibration = calibration_check(params, self.floor_plane)
        self.base_camera = parse_pose(params["camera_pose_in_base"])
        self.grasp_params = GraspParams(
            params["yaw_steps"], params["yaw_period_deg"], params["max_plane_rms_m"],
            params["max_tilt_deg"], params["clearance_m"], min_confidence=params[
                "min_confidence"], stride_px=params["stride_px"],
            max_candidates=params["max_candidates"], max_risk=params["max_risk"],
            min_height_m=params["min_height_m"])

    def configure_io(self) -> None:
        q = self.pub_qos
        self.pub_safe = self.create_publisher(Image, "grasp/safe_regions", q)
        self.pub_poses = self.create_publisher(PoseArray, "grasp/candidates", q)
        self.pub_info = self.create_publisher(Image, "grasp/candidate_info", q)
        self.pub_markers = self.create_publisher(MarkerArray, "grasp/markers", q)
        self.pub_base = self.tf = None
        if self.params["base_frame"]:
            self.pub_base = self.create_publisher(PoseArray, "grasp/candidates_base", q)
            if self.base_camera is None:
                try:
                    self.tf = TfCameraPose(self, self.params["base_frame"])
                except ImportError as exc:
                    raise ValueError("base_frame needs camera_pose_in_base (tf2_ros is not "
                                     "installed)") from exc
        subs = [Subscriber(self, Image, topic, self.sub_qos) for topic in (
            "segmentation/instance_labels", "segmentation/confidence",
            "segmentation/instance_scores", "segmentation/sample_labels",
            self.params["depth_topic"])]
        subs.append(Subscriber(self, CameraInfo, "camera/color/camera_info", self.sub_qos))
        if self.params["exclude_anomalies"]:
            subs.append(Subscriber(self, Image, "anomaly/instance_labels", self.sub_qos))
        self.sync = self.synchroniser(subs, 10)
        self.sync.registerCallback(self._on_frame)

    def _on_frame(self, labels_msg: Image, conf_msg: Image, scores_msg: Image,
                  samples_msg: Image, depth_msg: Image, info: CameraInfo,
                  anomaly_msg: Image | None = None) -> None:
        if not self.should_process():
            return
        start = time.monotonic()
        self.health.count("received")
        try:
            labels = image_to_array(labels_msg, np.uint16, "instance labels")
            confidence = image_to_array(conf_msg, np.float32, "confidence")
            if labels.ndim != 2 or confidence.ndim != 2:
                raise ValueError("labels and confidence must have one channel")
            depth = image_to_depth_m(depth_msg, labels.shape)
            intrinsics = intrinsics_from_camera_info(info, labels.shape)
            samples = image_to_array(samples_msg, np.uint16, "sample labels")
            samples = samples.reshape(*samples.shape[:2], -1).transpose(2, 0, 1)
            if samples.shape == (1, 1, 1):  # the mode drew no samples: risk 0
                samples = None
            scores = image_to_array(scores_msg, np.float32, "instance scores").ravel()
            ignore = self.outside_workspace(labels.shape)
            self.calibration.report(self.health, intrinsics, depth,
                                    self.outside_workspace.inside(labels.shape))
            if anomaly_msg is not None:
                foreign = image_to_array(anomaly_msg, np.uint16, "anomaly labels") > 0
                if foreign.shape != labels.shape:
                    raise ValueError(f"anomaly labels {foreign.shape} vs {labels.shape}")
                ignore = ignore | foreign
            plan = plan_grasps(labels, depth, intrinsics, self.layout, self.grasp_params,
                               confidence, samples, ignore, self.floor_plane)
        except (ImageConversionError, ValueError) as exc:
            self.drop_malformed("frame", exc)
            return
        header = labels_msg.header
        self.pub_safe.publish(numpy_to_image(plan.safe_labels, "mono16", header))
        poses = PoseArray(header=header, poses=[pose_msg(c.pose) for c in plan.candidates])
        self.pub_poses.publish(poses)
        self.pub_info.publish(numpy_to_image(candidate_table(plan.candidates, scores),
                                             "32FC1", header))
        self.pub_markers.publish(candidate_markers(plan.candidates, header, self.layout))
        if self.pub_base is not None:
            self._publish_in_base(header, [c.pose for c in plan.candidates])
        self.health.info["candidates"] = str(len(plan.candidates))
        self.health.published(latency_s=time.monotonic() - start)


    def _publish_in_base(self, header, poses: list[np.ndarray]) -> None:
        """The candidates in ``base_frame``, same order and stamp."""
        base_camera = self.base_camera if self.tf is None else self.tf.lookup(header.frame_id)
        if base_camera is None:
            self.health.count("no_base_transform")
            return
        msg = PoseArray(poses=[pose_msg(p) for p in to_base(base_camera, poses)])
        msg.header.stamp, msg.header.frame_id = header.stamp, self.params["base_frame"]
        self.pub_base.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(GraspRegionsNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
