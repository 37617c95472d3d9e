"""Hostile input at running nodes: each kind is counted (malformed) or processed (valid but
adversarial), raises nothing inside the node, and the next valid frame is processed.

The kinds, across the stack (ids in the parametrisations): images with unknown encodings,
short data, short or odd steps, zero or absurd sizes, a big-endian flag on little-endian
depth, depth of 1 mm / 1 um / NaN / inf / negative everywhere, depth of another size,
labels and confidence of the wrong element type, camera_info with inf / NaN / 1e9 / zero /
negative focal lengths, zero size or another size than the image, inputs of one stamp in
different frames, negative and zero stamps, pick poses with NaN, non-unit and zero
quaternions, at 1e30 m, behind the camera, in an unknown frame, a suction gauge with the
wrong count or NaN, a pick outcome without its fields and candidates with NaN poses.
"""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from hostile import CAPTURE_INPUTS, FRAME, HostileRig, image, info, raw, with_k
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_geometry import grasp_pose
from perception_nodes.nodes.camera_ingest import CameraIngestNode
from perception_nodes.nodes.grasp_capture import GraspCaptureNode
from perception_nodes.nodes.grasp_regions import GraspRegionsNode
from perception_nodes.nodes.pick_client import PickClientNode
from perception_nodes.nodes.segmentation import SegmentationNode
from perception_nodes.ros.messages import pose_msg

H, W = 48, 64
CAM = PinholeIntrinsics.from_fov(W, H, 45.0)
LABELS = np.zeros((H, W), np.uint16)
LABELS[14:34, 20:44] = 1
DEPTH = np.where(LABELS > 0, 0.45, 0.5).astype(np.float32)
RGB = np.dstack([LABELS.astype(np.uint8) * 200] * 3)


def _depth(values: float | np.ndarray, encoding: str = "32FC1") -> Image:
    dtype = np.uint16 if encoding == "16UC1" else np.float32
    return image(np.broadcast_to(np.asarray(values, dtype), (H, W)).copy(), encoding)


def _little_endian_flagged_big(msg: Image) -> Image:
    return raw(msg, is_bigendian=1)


IMAGE_KINDS = {  # a camera or partner image, any node
    "unknown_encoding": lambda m: raw(m, encoding="yuv422_weird"),
    "short_data": lambda m: raw(m, data=bytes(m.data)[: len(m.data) // 2]),
    "step_too_short": lambda m: raw(m, step=1),
    "odd_step": lambda m: raw(m, step=m.step + 1, data=bytes(m.data) + bytes(m.height)),
    "zero_size": lambda m: raw(m, width=0, height=0, step=0, data=b""),
    "absurd_size": lambda m: raw(m, width=100_000, height=100_000),
}
DEPTH_KINDS = {  # (message, counted as)
    "big_endian_flag": (_little_endian_flagged_big(_depth(DEPTH)), "published"),
    "depth_1mm_16uc1": (_depth(1, "16UC1"), "published"),
    "depth_1um": (_depth(1e-6), "published"),
    "depth_nan": (_depth(np.nan), "published"),
    "depth_inf": (_depth(np.inf), "published"),
    "depth_negative": (_depth(-0.5), "published"),
    "depth_other_size": (image(np.full((H // 2, W // 2), 0.5, np.float32), "32FC1"),
                         "malformed"),
    "depth_rgb8": (image(RGB, "rgb8"), "malformed"),
}
INFO_KINDS = {
    "fx_inf": with_k(info(CAM), fx=float("inf")),
    "fx_nan": with_k(info(CAM), fx=float("nan")),
    "fx_1e9": with_k(info(CAM), fx=1e9, fy=1e9),
    "k_zero": with_k(info(CAM), fx=0.0, fy=0.0, cx=0.0, cy=0.0),
    "fx_negative": with_k(info(CAM), fx=-50.0),
    "info_zero_size": raw(info(CAM), width=0, height=0),
    "info_other_size": info(PinholeIntrinsics.from_fov(2 * W, 2 * H, 45.0)),
}


def _grasp_inputs() -> dict:
    return {"segmentation/instance_labels": image(LABELS, "mono16"),
            "segmentation/confidence": image(np.ones((H, W), np.float32), "32FC1"),
            "segmentation/instance_scores": image(np.array([[0.9]], np.float32), "32FC1"),
            "segmentation/sample_labels": image(np.zeros((1, 1), np.uint16), "mono16"),
            "camera/depth/image_raw": _depth(DEPTH),
            "camera/color/camera_info": info(CAM)}


@pytest.fixture
def grasp_rig(ros_context):
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("floor_plane", value="0,0,-1,0.5")])
    inputs = {t: type(m) for t, m in _grasp_inputs().items()}
    rig = HostileRig(ros_context, node, inputs)
    yield rig
    rig.close()


def _cases_grasp_regions():
    cases = []
    for name, mutate in IMAGE_KINDS.items():
        cases.append((f"depth_{name}", "camera/depth/image_raw", mutate(_depth(DEPTH)),
                      "malformed"))
    for name, (msg, outcome) in DEPTH_KINDS.items():
        cases.append((name, "camera/depth/image_raw", msg, outcome))
    for name, msg in INFO_KINDS.items():
        cases.append((name, "camera/color/camera_info", msg, "malformed"))
    cases += [
        ("labels_32fc1", "segmentation/instance_labels",
         image(LABELS.astype(np.float32), "32FC1"), "malformed"),
        ("labels_16uc3", "segmentation/instance_labels",
         image(np.dstack([LABELS] * 3), "16UC3"), "malformed"),
        ("confidence_mono8", "segmentation/confidence", image(np.ones((H, W), np.uint8),
                                                              "mono8"), "malformed"),
        ("confidence_other_size", "segmentation/confidence",
         image(np.ones((H, W // 2), np.float32), "32FC1"), "malformed"),
        ("samples_32fc1", "segmentation/sample_labels",
         image(np.zeros((4, 4), np.float32), "32FC1"), "malformed"),
        ("frame_id_mismatch", "camera/color/camera_info",
         raw(info(CAM), header=type(info(CAM).header)(frame_id="other_camera")), "malformed"),
        ("labels_every_pixel_its_own", "segmentation/instance_labels",
         image(np.arange(1, H * W + 1, dtype=np.uint16).reshape(H, W), "mono16"),
         "published"),
    ]
    return cases


@pytest.mark.parametrize("name,topic,msg,outcome", _cases_grasp_regions(),
                         ids=[c[0] for c in _cases_grasp_regions()])
def test_grasp_regions_survives(grasp_rig, name, topic, msg, outcome):
    valid = _grasp_inputs()
    grasp_rig.survives({**valid, topic: msg}, valid, outcome)


def test_negative_and_zero_stamps_pass_through_camera_ingest(ros_context):
    node = CameraIngestNode(context=ros_context, parameter_overrides=[
        Parameter("rate_hz", value=0.0)])
    inputs = {"sim/color/image_raw": Image, "sim/depth/image_raw": Image,
              "sim/color/camera_info": CameraInfo}
    rig = HostileRig(ros_context, node, inputs)
    valid = {"sim/color/image_raw": image(RGB, "rgb8"), "sim/depth/image_raw": _depth(DEPTH),
             "sim/color/camera_info": info(CAM)}
    try:
        for sec in (-5, 0, 2**31 - 10):  # before 1970, unset, and in 2038: no capture times
            rig.stamp = sec - 1  # send() stamps the next second
            published = rig.counter("published")
            rig.send(valid)
            assert rig.spin_until(lambda n=published: rig.counter("published") > n)
        assert np.isnan(node.health.latency_ms(50))  # none of them entered the statistics
        rig.stamp = int(time.time()) - 5
        rig.survives({**valid, "sim/color/image_raw": raw(image(RGB, "rgb8"), step=1)}, valid)
        assert node.health.latency_ms(99) < 60_000  # a frame of now: its age is counted
    finally:
        rig.close()


def _pick(pose: np.ndarray | None = None, frame: str = FRAME, **raw_pose) -> PoseStamped:
    pose = grasp_pose(np.array([0.0, 0.0, 0.5]), np.array([0.0, 0.0, -1.0])) \
        if pose is None else pose
    msg = PoseStamped(pose=pose_msg(pose))
    msg.header.frame_id = frame
    for path, value in raw_pose.items():
        part, field = path.split("_")
        setattr(getattr(msg.pose, part), field, value)
    return msg


def _gauge(values) -> Float32MultiArray:
    return Float32MultiArray(data=[float(v) for v in values])


CAPTURE_KINDS = {  # pick requests, each counted malformed (or never stored)
    "pose_nan": _pick(position_x=float("nan")),
    "quaternion_non_unit": _pick(orientation_w=3.0),
    "quaternion_zero": _pick(orientation_x=0.0, orientation_y=0.0, orientation_z=0.0,
                             orientation_w=0.0),
    "pose_1e30": _pick(position_z=1e30),
    "pose_behind_camera": _pick(grasp_pose(np.array([0.0, 0.0, -0.5]),
                                           np.array([0.0, 0.0, 1.0]))),
    "pose_unknown_frame": _pick(frame="the_moon"),
}


@pytest.mark.parametrize("kind", sorted(CAPTURE_KINDS))
def test_grasp_capture_stores_only_picks_it_can_interpret(ros_context, tmp_path, kind):
    node = GraspCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("dataset_dir", value=str(tmp_path)), Parameter("cup_offsets_m", value="0,0"),
        Parameter("max_wait_frames", value=1)])
    rig = HostileRig(ros_context, node, CAPTURE_INPUTS)
    frame = {"camera/color/image_raw": image(RGB, "rgb8"),
             "camera/color/camera_info": info(CAM)}
    try:
        rig.send(frame)
        assert rig.spin_until(lambda: rig.counter("received") >= 1)
        malformed = rig.counter("malformed")
        rig.send({"arm/pick_request": CAPTURE_KINDS[kind]})
        rig.spin_until(lambda: rig.counter("malformed") > malformed, 2.0)
        rig.send({"arm/suction_gauge": _gauge([80.0])})
        for _ in range(3):
            rig.send(frame)
        assert rig.spin_until(lambda: rig.counter("malformed") > malformed)
        assert rig.counter("published") == 0 and rig.counter("callback_errors") == 0
        # then a pick it can interpret is stored
        rig.send({"arm/pick_request": _pick()})
        rig.spin_until(lambda: node.pending is not None, 5.0)
        rig.send({"arm/suction_gauge": _gauge([80.0])})
        rig.spin_until(lambda: node.pending is not None and node.pending.get("watch"), 5.0)
        rig.send(frame)
        rig.send(frame)
        assert rig.spin_until(lambda: rig.counter("published") == 1), node.health.last_error
    finally:
        rig.close()


@pytest.mark.parametrize("kind,gauge", [("gauge_wrong_count", [80.0, 80.0]),
                                        ("gauge_nan", [float("nan")]), ("gauge_empty", [])])
def test_grasp_capture_refuses_gauges_it_cannot_read(ros_context, tmp_path, kind, gauge):
    node = GraspCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("dataset_dir", value=str(tmp_path)), Parameter("cup_offsets_m", value="0,0")])
    rig = HostileRig(ros_context, node, CAPTURE_INPUTS)
    try:
        rig.send({"camera/color/image_raw": image(RGB, "rgb8"),
                  "camera/color/camera_info": info(CAM)})
        assert rig.spin_until(lambda: rig.counter("received") >= 1)
        rig.send({"arm/pick_request": _pick()})
        assert rig.spin_until(lambda: node.pending is not None)
        rig.send({"arm/suction_gauge": _gauge(gauge)})
        assert rig.spin_until(lambda: rig.counter("malformed") == 1)
        assert node.pending is None and rig.counter("callback_errors") == 0
    finally:
        rig.close()


def test_pick_client_survives_outcomes_without_fields_and_nan_candidates(ros_context):
    node = PickClientNode(context=ros_context, parameter_overrides=[
        Parameter("policy", value="grasp_regions"), Parameter("period_s", value=0.1)])
    rig = HostileRig(ros_context, node, {"arm/pick_outcome": DiagnosticArray,
                                          "grasp/candidates": PoseArray})
    requests: list = []
    rig.probe.create_subscription(PoseStamped, "arm/pick_request", requests.append, 10)
    try:
        outcome = DiagnosticArray(status=[DiagnosticStatus(values=[
            KeyValue(key="items_lifted", value="two")])])
        rig.send({"arm/pick_outcome": outcome})
        assert rig.spin_until(lambda: rig.counter("malformed") == 1)
        nan = Pose()
        nan.position.x = float("nan")
        good = pose_msg(grasp_pose(np.array([0.0, 0.0, 0.5]), np.array([0.0, 0.0, -1.0])))
        candidates = PoseArray(poses=[nan, good])
        candidates.header.frame_id = FRAME
        rig.send({"grasp/candidates": candidates})
        assert rig.spin_until(lambda: len(requests) == 1)
        assert requests[0].pose.position.z == pytest.approx(0.5)  # the NaN one was skipped
        assert rig.counter("malformed") == 2 and rig.counter("callback_errors") == 0
    finally:
        rig.close()


SEG_KINDS = {
    **{f"color_{k}": ("camera/color/image_raw", f(image(RGB, "rgb8")), "malformed")
       for k, f in IMAGE_KINDS.items() if k != "odd_step"},
    # one byte of padding per row is a whole number of rgb8 elements: a valid image
    "color_padded_rows": ("camera/color/image_raw", IMAGE_KINDS["odd_step"](image(RGB, "rgb8")),
                          "published"),
    "color_mono16": ("camera/color/image_raw", image(LABELS, "mono16"), "malformed"),
    "color_bgr8": ("camera/color/image_raw", image(RGB[..., ::-1].copy(), "bgr8"),
                   "published"),
    # no valid depth (and no floor calibration): no height, the frame is dropped and counted
    **{k: ("camera/depth/image_raw", m, "malformed") for k, (m, o) in DEPTH_KINDS.items()},
    **{k: ("camera/color/camera_info", m, "malformed") for k, m in INFO_KINDS.items()},
}


def test_segmentation_survives_every_kind(ros_context, smoke_models):
    """One running node (an RGB-H model) takes every kind in turn."""
    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)), Parameter("mode", value="baseline"),
        Parameter("baseline_model", value="baseline_segmenter_rgbh"),
        Parameter("threads", value=1)])
    rig = HostileRig(ros_context, node, {"camera/color/image_raw": Image,
                                          "camera/depth/image_raw": Image,
                                          "camera/color/camera_info": CameraInfo})
    valid = {"camera/color/image_raw": image(RGB, "rgb8"),
             "camera/depth/image_raw": _depth(DEPTH), "camera/color/camera_info": info(CAM)}
    failures = []
    try:
        for kind, (topic, msg, outcome) in sorted(SEG_KINDS.items()):
            try:
                rig.survives({**valid, topic: msg}, valid, outcome)
            except AssertionError as exc:
                failures.append(f"{kind}: {exc}")
    finally:
        rig.close()
    assert not failures, "\n".join(failures)
    assert len(SEG_KINDS) >= 20


def test_grasp_capture_does_not_store_a_pick_seen_through_a_zero_camera_info(ros_context,
                                                                             tmp_path):
    node = GraspCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("dataset_dir", value=str(tmp_path)), Parameter("cup_offsets_m", value="0,0"),
        Parameter("max_wait_frames", value=1)])
    rig = HostileRig(ros_context, node, CAPTURE_INPUTS)
    zero = {"camera/color/image_raw": image(RGB, "rgb8"),
            "camera/color/camera_info": INFO_KINDS["k_zero"]}
    try:
        rig.send(zero)
        assert rig.spin_until(lambda: rig.counter("received") >= 1)
        rig.send({"arm/pick_request": _pick()})
        assert rig.spin_until(lambda: node.pending is not None)
        rig.send({"arm/suction_gauge": _gauge([80.0])})
        rig.spin_until(lambda: node.pending is not None and node.pending.get("watch"), 5.0)
        rig.send(zero)
        rig.send(zero)
        assert rig.spin_until(lambda: rig.counter("malformed") == 1)
        assert "pick not stored" in node.health.last_error
        assert rig.counter("published") == 0 and rig.counter("callback_errors") == 0
    finally:
        rig.close()
