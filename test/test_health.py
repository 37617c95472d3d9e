"""Diagnostics tell the truth: a missing camera, a video at its end, a silent partner topic
and a calibration made for another camera each give the right level on /diagnostics."""

import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import plane_depth, share_below_plane
from perception_nodes.nodes.camera_ingest import CameraIngestNode
from perception_nodes.nodes.grasp_regions import GraspRegionsNode
from perception_nodes.ros import diagnostics
from perception_nodes.ros.calibration import (
    SIM_CALIBRATION_CAMERA,
    CalibrationCheck,
    parse_calibration_camera,
)
from perception_nodes.ros.diagnostics import NodeHealth
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.messages import camera_info_msg
from perception_nodes.ros.params import ParameterValueError

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
SIM_CAMERA = PinholeIntrinsics.from_fov(640, 480, 45.0)
FLOOR = np.array([0.0, 0.0, -1.0, 0.945])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_watched_input_goes_warn_then_error_and_back_to_ok(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(diagnostics.time, "monotonic", clock)
    health = NodeHealth(input_warn_s=2.0, input_error_s=5.0)
    health.watch(["camera/color/image_raw", "camera/depth/image_raw"])
    assert health.status("n").level == OK
    clock.now += 2.5
    health.heard("camera/color/image_raw")
    status = health.status("n")
    assert status.level == WARN and "no camera/depth/image_raw received yet" in status.message
    clock.now += 3.0  # depth 5.5 s silent (ERROR), colour 3 s (WARN): the worst is reported
    status = health.status("n")
    assert status.level == ERROR and status.message == "no camera/depth/image_raw received " \
        "yet (6 s)"
    assert {kv.key: kv.value for kv in status.values}["silent_inputs"] == \
        "camera/depth/image_raw camera/color/image_raw"
    health.heard("camera/depth/image_raw")
    health.heard("camera/color/image_raw")
    assert health.status("n").level == OK
    clock.now += 4.0
    assert health.status("n").message == "no camera/color/image_raw for 4 s; " \
        "no camera/depth/image_raw for 4 s"
    health.unwatch()  # deactivated: nothing is expected
    assert health.status("n").level == OK


def test_conditions_hold_their_level_until_cleared():
    health = NodeHealth()
    health.set_condition("calibration", ERROR, "calibrated for another camera")
    assert health.status("n").level == ERROR
    health.clear_condition("calibration")
    assert health.status("n").level == OK


def test_calibration_check_names_another_camera_and_a_floor_that_does_not_fit():
    camera = parse_calibration_camera(SIM_CALIBRATION_CAMERA)
    check = CalibrationCheck(camera, FLOOR)
    floor = plane_depth(SIM_CAMERA, FLOOR, (480, 640))
    assert check.problem(SIM_CAMERA, floor) == ""
    other = PinholeIntrinsics.from_fov(1280, 720, 60.0)
    assert "made for a 640x480 camera" in check.problem(other)
    # the same camera, moved 10 cm up: the measured floor lies 10 cm below the plane
    assert share_below_plane(floor + 0.1, SIM_CAMERA, FLOOR) == 1.0
    assert "lies over 3 cm below" in check.problem(SIM_CAMERA, floor + 0.1)
    assert CalibrationCheck(None, None).problem(other, floor) == ""
    for bad in ("640x480", "640*480 1 1 1 1", "640x480 nan 1 1 1", "0x480 1 1 1 1"):
        with pytest.raises(ParameterValueError):
            parse_calibration_camera(bad)


def _spin_until(executor, done, seconds: float = 20.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not done():
        executor.spin_once(timeout_sec=0.05)


def _status_of(diags: list, name: str):
    mine = [s for d in diags for s in d.status if s.name == f"perception: {name}"]
    return mine[-1] if mine else None


def _watching(ros_context, node):
    probe = Node("health_probe", context=ros_context)
    diags: list = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    return probe, diags, executor


def test_missing_camera_device_is_error_with_the_reason(ros_context):
    node = CameraIngestNode(context=ros_context, parameter_overrides=[
        Parameter("source", value="v4l2"), Parameter("device", value="/dev/video97"),
        Parameter("diagnostics_period_s", value=0.1)])
    probe, diags, executor = _watching(ros_context, node)
    _spin_until(executor, lambda: _status_of(diags, "camera_ingest") is not None)
    status = _status_of(diags, "camera_ingest")
    node.destroy_node()
    probe.destroy_node()
    assert status.level == ERROR and "configure failed" in status.message
    assert "/dev/video97" in status.message


def test_a_video_at_its_end_goes_warn_then_error(ros_context, tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(3):
        writer.write(np.full((24, 32, 3), 60 * i, np.uint8))
    writer.release()
    node = CameraIngestNode(context=ros_context, parameter_overrides=[
        Parameter("source", value="video"), Parameter("path", value=str(path)),
        Parameter("loop", value=False), Parameter("rate_hz", value=20.0),
        Parameter("diagnostics_period_s", value=0.1), Parameter("input_warn_s", value=0.6),
        Parameter("input_error_s", value=1.5)])
    probe, diags, executor = _watching(ros_context, node)
    levels = []

    def ended_in_error() -> bool:
        status = _status_of(diags, "camera_ingest")
        if status is not None and (not levels or levels[-1] != status.level):
            levels.append(status.level)
        return bool(levels) and levels[-1] == ERROR

    _spin_until(executor, ended_in_error)
    status = _status_of(diags, "camera_ingest")
    node.trigger_shutdown()
    node.destroy_node()
    probe.destroy_node()
    assert node.health.counters["published"] >= 1
    assert levels[-2:] == [WARN, ERROR]  # playing (OK) -> ended, WARN -> ERROR
    assert "no frames from the video source for" in status.message
    assert {kv.key: kv.value for kv in status.values}["source_state"] == "ended"


def test_a_silent_partner_topic_is_warn_then_error(ros_context):
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("diagnostics_period_s", value=0.1), Parameter("input_warn_s", value=0.5),
        Parameter("input_error_s", value=1.2)])
    probe, diags, executor = _watching(ros_context, node)
    seen = set()

    def errored() -> bool:
        status = _status_of(diags, "grasp_regions")
        if status is not None:
            seen.add(status.level)
        return ERROR in seen

    _spin_until(executor, errored)
    status = _status_of(diags, "grasp_regions")
    node.destroy_node()
    probe.destroy_node()
    assert {WARN, ERROR} <= seen
    assert "no segmentation/instance_labels received yet" in status.message


def test_grasp_regions_says_when_its_calibration_is_another_cameras(ros_context):
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("floor_plane", value="0,0,-1,0.945"),
        Parameter("calibration_camera", value=SIM_CALIBRATION_CAMERA)])
    probe = Node("calibration_probe", context=ros_context)
    h, w = 48, 64
    camera = PinholeIntrinsics.from_fov(w, h, 45.0)  # not the calibrated 640x480 camera
    topics = {"segmentation/instance_labels": np.zeros((h, w), np.uint16),
              "segmentation/confidence": np.ones((h, w), np.float32),
              "segmentation/instance_scores": np.zeros((1, 1), np.float32),
              "segmentation/sample_labels": np.zeros((1, 1), np.uint16),
              "camera/depth/image_raw": plane_depth(camera, FLOOR, (h, w))}
    encodings = {np.dtype(np.uint16): "mono16", np.dtype(np.float32): "32FC1"}
    pubs = {t: probe.create_publisher(Image, t, 10) for t in topics}
    pub_info = probe.create_publisher(CameraInfo, "camera/color/camera_info", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    _spin_until(executor, lambda: min(p.get_subscription_count() for p in pubs.values()))
    header = numpy_to_image(np.zeros((1, 1), np.uint16), "mono16").header
    header.stamp.sec = 3
    for topic, array in topics.items():
        pubs[topic].publish(numpy_to_image(array, encodings[array.dtype], header))
    pub_info.publish(camera_info_msg(camera, header))
    _spin_until(executor, lambda: node.health.counters["published"] >= 1)
    status = node.health.status("grasp_regions")
    node.destroy_node()
    probe.destroy_node()
    assert status.level == ERROR and "made for a 640x480 camera" in status.message
