"""camera_ingest's hardware-free sources (image folder, video file) and its diagnostics."""

import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.ingest.sources import FolderSource, OpenCvSource, SourceError
from perception_nodes.nodes.camera_ingest import CameraIngestNode
from perception_nodes.ros.image_conversion import image_to_numpy
from perception_nodes.ros.qos import qos_by_name


def _images(n=3, h=24, w=32):
    rng = np.random.default_rng(2)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_folder_source_reads_in_name_order_skips_unreadable_and_loops(tmp_path):
    imgs = _images()
    for i, img in enumerate(imgs):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img[..., ::-1])
    (tmp_path / "05.png").write_bytes(b"not a png")
    src = FolderSource(str(tmp_path), loop=True)
    got = [src.read() for _ in range(4)]
    for a, b in zip(got[:3], imgs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert src.unreadable == 1
    np.testing.assert_array_equal(got[3], imgs[0])
    with pytest.raises(SourceError):
        FolderSource(str(tmp_path / "missing"))


def test_video_source_plays_a_file_and_reports_missing_files(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for img in _images(5):
        writer.write(img[..., ::-1])
    writer.release()
    src = OpenCvSource(str(path), loop=False)
    frames = []
    while (frame := src.read()) is not None:
        frames.append(frame)
    src.close()
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3)
    with pytest.raises(SourceError, match="does not exist"):
        OpenCvSource(str(tmp_path / "nope.mp4"))


def test_folder_node_publishes_images_camera_info_and_diagnostics(ros_context, tmp_path):
    imgs = _images()
    for i, img in enumerate(imgs):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img[..., ::-1])
    node = CameraIngestNode(context=ros_context, parameter_overrides=[
        Parameter("source", value="folder"), Parameter("path", value=str(tmp_path)),
        Parameter("rate_hz", value=20.0), Parameter("diagnostics_period_s", value=0.2)])
    probe = Node("probe", context=ros_context)
    images, infos, diags = [], [], []
    sensor = qos_by_name("sensor_data")
    probe.create_subscription(Image, "camera/color/image_raw", images.append, sensor)
    probe.create_subscription(CameraInfo, "camera/color/camera_info", infos.append, sensor)
    probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    end = time.monotonic() + 20
    while time.monotonic() < end and (len(images) < 6 or not diags):
        executor.spin_once(timeout_sec=0.05)
    node.release_io()
    node.destroy_node()
    assert len(images) >= 6 and infos
    frames = [image_to_numpy(m) for m in images]
    assert any(np.array_equal(f, imgs[0]) for f in frames)
    assert any(np.array_equal(f, imgs[2]) for f in frames)
    assert infos[0].width == 32 and infos[0].k[0] > 0
    assert images[0].header.frame_id == "camera_color_optical_frame"
    values = {kv.key: kv.value for kv in diags[-1].status[0].values}
    assert {"published", "dropped", "malformed", "rate_hz", "latency_p99_ms"} <= set(values)
    assert diags[-1].status[0].name == "perception: camera_ingest"
