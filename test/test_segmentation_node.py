"""The segmentation node on sim frames: outputs carry the input's stamp; bad input dropped."""

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from perception_nodes.inference.onnx_model import ModelError
from perception_nodes.nodes.segmentation import SegmentationNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.sim.cell import CellConfig, PickingCell

TOPICS = ("instance_labels", "confidence", "instance_scores", "overlay", "sample_labels")


@pytest.mark.parametrize("mode", ["confidence_mask", "union_nms", "prior_mean", "baseline",
                                  "superpixel"])
def test_outputs_match_the_input_stamp(ros_context, smoke_models, mode):
    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)), Parameter("mode", value=mode),
        Parameter("superpixel_model", value="superpixel_segmenter"),
        Parameter("num_samples", value=4)])
    probe = Node("seg_probe", context=ros_context)
    got = {t: [] for t in TOPICS}
    for t in TOPICS:
        probe.create_subscription(Image, f"segmentation/{t}", got[t].append, 10)
    pub = probe.create_publisher(Image, "camera/color/image_raw", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    with PickingCell(CellConfig(width=96, height=72, min_items=4, max_items=6), seed=2) as c:
        frame = c.render()
    end = time.monotonic() + 20
    while not pub.get_subscription_count() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    bad = numpy_to_image(frame.rgb, "rgb8")
    bad.encoding = "yuv422"
    pub.publish(bad)
    for sec in (11, 12):
        msg = numpy_to_image(frame.rgb, "rgb8")
        msg.header.stamp.sec, msg.header.frame_id = sec, "camera_color_optical_frame"
        pub.publish(msg)
    while time.monotonic() < end and min(len(v) for v in got.values()) < 2:
        executor.spin_once(timeout_sec=0.05)
    assert node.health.counters["malformed"] == 1
    for topic in TOPICS:
        assert [m.header.stamp.sec for m in got[topic]] == [11, 12], topic
        assert got[topic][0].header.frame_id == "camera_color_optical_frame"
    labels = image_to_numpy(got["instance_labels"][0])
    conf = image_to_numpy(got["confidence"][0])
    assert labels.shape == (72, 96) and labels.dtype == np.uint16
    assert conf.dtype == np.float32 and (conf >= 0).all() and (conf <= 1).all()
    scores = image_to_numpy(got["instance_scores"][0])
    assert scores.shape[0] == 1 and (labels.max() == 0 or scores.shape[1] == labels.max())
    # the topic contract (docs/nodes.md): the model's output grid, its input size / 4,
    # whatever the image size, one channel per latent sample; 1 x 1 zero without samples
    samples = image_to_numpy(got["sample_labels"][0])
    if mode == "confidence_mask":
        grid_h, grid_w = (s // 4 for s in node.runner.runner.input_size)
        assert samples.shape == (grid_h, grid_w, 4) and samples.dtype == np.uint16
        assert got["sample_labels"][0].encoding == "16UC4"
    else:
        assert samples.shape == (1, 1) and samples.max() == 0
    node.release_io()
    node.destroy_node()
    probe.destroy_node()


def test_a_missing_model_fails_configuration_with_the_known_names(ros_context, smoke_models,
                                                                  tmp_path):
    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)),
        Parameter("model", value="no_such_model")])
    assert not node.active and "latent_segmenter" in node.health.last_error
    from diagnostic_msgs.msg import DiagnosticStatus

    status = node.health.status("segmentation")  # a refused model is an ERROR, not OK
    assert status.level == DiagnosticStatus.ERROR and "no_such_model" in status.message
    node.destroy_node()
    with pytest.raises(ModelError):
        from perception_nodes.inference.onnx_model import resolve_model

        resolve_model("no_such_model", smoke_models)


def test_geometric_mode_segments_an_rgbd_frame_without_a_model(ros_context):
    from test_geometric import FLOOR, K, staged

    from perception_nodes.ros.messages import camera_info_msg

    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("mode", value="geometric"),
        Parameter("floor_plane", value=",".join(str(v) for v in FLOOR))])
    assert node.active and node.runner is None
    probe, got, pubs, executor, end = _rgbd_probe(ros_context, node, "geo_probe")
    rgb = np.zeros((120, 160, 3), np.uint8)
    header = numpy_to_image(rgb, "rgb8").header
    header.stamp.sec, header.frame_id = 5, "camera_color_optical_frame"
    depth_mm = np.nan_to_num(staged() * 1000.0, nan=0.0).astype(np.uint16)  # a 16UC1 camera
    pubs["rgb"].publish(numpy_to_image(rgb, "rgb8", header))
    pubs["depth"].publish(numpy_to_image(depth_mm, "16UC1", header))
    pubs["info"].publish(camera_info_msg(K, header))
    while time.monotonic() < end and min(len(v) for v in got.values()) < 1:
        executor.spin_once(timeout_sec=0.05)
    labels = image_to_numpy(got["instance_labels"][0])
    assert got["instance_labels"][0].header.stamp.sec == 5
    assert labels.max() == 3  # two boxes of different heights, one flush pair
    assert image_to_numpy(got["sample_labels"][0]).shape == (1, 1)
    assert image_to_numpy(got["instance_scores"][0]).shape == (1, 3)
    node.destroy_node()
    probe.destroy_node()


@pytest.mark.parametrize("mode,param,model", [
    ("confidence_mask", "model", "latent_segmenter_rgbh"),
    ("baseline", "baseline_model", "baseline_segmenter_rgbh"),
    ("superpixel", "superpixel_model", "superpixel_segmenter_rgbh")])
def test_an_rgbh_model_segments_rgbd_frames_matched_by_stamp(ros_context, smoke_models, mode,
                                                             param, model):

    from perception_nodes.ros.messages import camera_info_msg
    from perception_nodes.sim.dataset import split_config

    with PickingCell(split_config("test", 96, 72), seed=200_001) as cell:
        frame, floor = cell.render(), cell.floor_plane()
    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)), Parameter("mode", value=mode),
        Parameter(param, value=model),
        Parameter("num_samples", value=4),
        Parameter("floor_plane", value=",".join(str(v) for v in floor))])
    assert node.active and node.runner.needs_height
    probe, got, pubs, executor, end = _rgbd_probe(ros_context, node, "rgbh_probe")
    for sec in (21, 22):
        header = numpy_to_image(frame.rgb, "rgb8").header
        header.stamp.sec, header.frame_id = sec, "camera_color_optical_frame"
        depth = frame.depth.copy()
        depth[10:20, 10:30] = np.nan  # a hole: filled, not propagated
        pubs["rgb"].publish(numpy_to_image(frame.rgb, "rgb8", header))
        if sec == 22:  # a colour frame without its depth is never segmented alone
            continue
        pubs["depth"].publish(numpy_to_image(depth, "32FC1", header))
        pubs["info"].publish(camera_info_msg(frame.intrinsics, header))
    while time.monotonic() < end and min(len(v) for v in got.values()) < 1:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(20):
        executor.spin_once(timeout_sec=0.02)
    for topic in TOPICS:
        assert [m.header.stamp.sec for m in got[topic]] == [21], topic
    labels = image_to_numpy(got["instance_labels"][0])
    assert labels.shape == (72, 96) and labels.dtype == np.uint16
    assert node.health.counters.get("malformed", 0) == 0
    node.release_io()
    node.destroy_node()
    probe.destroy_node()


def _rgbd_probe(context, node, name: str):
    """A probe node publishing colour, depth and camera info and collecting every output,
    spun with ``node`` until connected: ``(probe, got, pubs, executor, deadline)``."""
    from sensor_msgs.msg import CameraInfo
    from test_grasp_regions_node import _connected

    probe = Node(name, context=context)
    got = {t: [] for t in TOPICS}
    for t in TOPICS:
        probe.create_subscription(Image, f"segmentation/{t}", got[t].append, 10)
    pubs = {"rgb": probe.create_publisher(Image, "camera/color/image_raw", 10),
            "depth": probe.create_publisher(Image, "camera/depth/image_raw", 10),
            "info": probe.create_publisher(CameraInfo, "camera/color/camera_info", 10)}
    executor, end = _connected(context, node, probe, pubs)
    return probe, got, pubs, executor, end


def test_a_model_file_with_a_flipped_byte_is_refused_and_error(ros_context, smoke_models,
                                                                tmp_path):
    import shutil

    from diagnostic_msgs.msg import DiagnosticStatus

    models = tmp_path / "models"
    shutil.copytree(smoke_models, models)
    path = models / "latent_segmenter" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(models)), Parameter("mode", value="prior_mean")])
    status = node.health.status("segmentation")
    node.destroy_node()
    assert not node.active
    assert status.level == DiagnosticStatus.ERROR and "sha256" in status.message
