"""The grasp_regions node on a staged scene: the top candidate's footprint lies on one item."""

import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from perception_nodes.core.camera_model import transform_points
from perception_nodes.nodes.grasp_regions import INFO_COLUMNS, GraspRegionsNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.messages import camera_info_msg, matrix_from_pose_msg
from perception_nodes.sim.catalog import ItemSpec
from perception_nodes.sim.cell import CellConfig, PickingCell

GREY = (0.5, 0.5, 0.55, 1.0)


def _staged_frame():
    """Two same-coloured boxes side by side, each narrower than the cup layout, together
    wider (a merged mask would put the gripper on the seam), and a small box apart."""
    narrow = ItemSpec("box", "narrow", (0.03, 0.05, 0.02), 0.2, GREY)
    small = ItemSpec("box", "small", (0.025, 0.025, 0.015), 0.1, (0.8, 0.2, 0.2, 1.0))
    with PickingCell(CellConfig(width=320, height=240), seed=5) as cell:
        cell.stage([(narrow, [-0.0305, 0.0, 0.04], [0, 0, 0, 1]),
                    (narrow, [0.0605, 0.0, 0.04], [0, 0, 0, 1]),
                    (small, [0.0, 0.12, 0.04], [0, 0, 0, 1])])
        return cell.render()


def publish_scores_and_samples(pubs: dict, header, samples: np.ndarray | None = None) -> None:
    """What segmentation publishes beside the labels: scores 1 x N, and the samples (a
    single-hypothesis mode's 1 x 1 zero when ``samples`` is None)."""
    scores = np.array([[0.9, 0.8, 0.7]], np.float32)
    pubs["segmentation/instance_scores"].publish(numpy_to_image(scores, "32FC1", header))
    samples = np.zeros((1, 1, 1), np.uint16) if samples is None else samples
    k = samples.shape[2]
    pubs["segmentation/sample_labels"].publish(
        numpy_to_image(samples[:, :, 0] if k == 1 else samples, f"16UC{k}", header))


def _connected(context, node, probe, pubs: dict) -> tuple[SingleThreadedExecutor, float]:
    """An executor spinning both nodes, spun until every publisher has a subscriber; and
    the test's deadline."""
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    end = time.monotonic() + 20
    while min(p.get_subscription_count() for p in pubs.values()) == 0 and \
            time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return executor, end


@pytest.mark.parametrize("depth_topic", ["camera/depth/image_raw",
                                         "camera/depth_mono/image_raw"])
def test_top_candidate_footprint_lies_on_one_item(ros_context, depth_topic):
    frame = _staged_frame()
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("workspace_polygon", value="0.3,0.24; 0.7,0.24; 0.7,0.76; 0.3,0.76"),
        Parameter("depth_topic", value=depth_topic)])
    probe = Node("grasp_probe", context=ros_context)
    got = {"poses": [], "info": [], "safe": [], "markers": []}
    probe.create_subscription(PoseArray, "grasp/candidates", got["poses"].append, 10)
    probe.create_subscription(Image, "grasp/candidate_info", got["info"].append, 10)
    probe.create_subscription(Image, "grasp/safe_regions", got["safe"].append, 10)
    probe.create_subscription(MarkerArray, "grasp/markers", got["markers"].append, 10)
    pubs = {t: probe.create_publisher(m, t, 10) for t, m in (
        ("segmentation/instance_labels", Image), ("segmentation/confidence", Image),
        ("segmentation/instance_scores", Image), ("segmentation/sample_labels", Image),
        (depth_topic, Image), ("camera/color/camera_info", CameraInfo))}
    executor, end = _connected(ros_context, node, probe, pubs)
    confidence = np.ones(frame.labels.shape, np.float32)
    for sec, depth in ((7, np.zeros((3, 3), np.float32)), (8, frame.depth)):
        header = numpy_to_image(frame.rgb, "rgb8").header
        header.stamp.sec, header.frame_id = sec, "camera_color_optical_frame"
        pubs["segmentation/instance_labels"].publish(
            numpy_to_image(frame.labels, "mono16", header))
        pubs["segmentation/confidence"].publish(numpy_to_image(confidence, "32FC1", header))
        pubs[depth_topic].publish(numpy_to_image(depth, "32FC1", header))
        pubs["camera/color/camera_info"].publish(camera_info_msg(frame.intrinsics, header))
        publish_scores_and_samples(pubs, header)
    while time.monotonic() < end and min(len(v) for v in got.values()) == 0:
        executor.spin_once(timeout_sec=0.05)
    # the frame whose depth does not match the labels is dropped and counted
    assert node.health.counters["malformed"] == 1
    assert [m.header.stamp.sec for m in got["poses"]] == [8]
    assert got["info"][0].header.stamp.sec == got["safe"][0].header.stamp.sec == 8
    poses, info = got["poses"][0].poses, image_to_numpy(got["info"][0])
    assert len(poses) >= 2 and info.shape == (len(poses), len(INFO_COLUMNS))
    assert 3 in info[:, INFO_COLUMNS.index("instance")]  # the small box is graspable
    assert np.all(np.diff(info[:, 0]) <= 0)  # ranked by quality
    top = matrix_from_pose_msg(poses[0])
    layout = node.layout
    cups = np.array([[x, y, 0.0] for x, y in layout.cup_offsets_m])
    uv = np.rint(frame.intrinsics.project(transform_points(top, cups))).astype(int)
    under = frame.labels[uv[:, 1], uv[:, 0]]
    item = int(info[0, INFO_COLUMNS.index("instance")])
    assert under[0] == item  # the centre cup is on the chosen item
    assert set(under.tolist()) <= {item, 0}  # no cup on another item
    assert top[2, 2] < -0.9  # approach along the floor normal, z out of the surface
    safe = image_to_numpy(got["safe"][0])
    assert ((safe == 0) | (safe == frame.labels)).all()
    assert got["markers"] and len(got["markers"][0].markers) == 1 + 3 * len(poses)
    node.destroy_node()
    probe.destroy_node()


def test_no_candidate_on_a_foreign_object_when_anomalies_are_excluded(ros_context):
    frame = _staged_frame()
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("workspace_polygon", value="0.3,0.24; 0.7,0.24; 0.7,0.76; 0.3,0.76"),
        Parameter("exclude_anomalies", value=True)])
    probe = Node("grasp_probe_anomaly", context=ros_context)
    got = {"info": [], "safe": []}
    probe.create_subscription(Image, "grasp/candidate_info", got["info"].append, 10)
    probe.create_subscription(Image, "grasp/safe_regions", got["safe"].append, 10)
    topics = ("segmentation/instance_labels", "segmentation/confidence",
              "camera/depth/image_raw", "camera/color/camera_info", "anomaly/instance_labels",
              "segmentation/instance_scores", "segmentation/sample_labels")
    pubs = {t: probe.create_publisher(CameraInfo if t.endswith("info") else Image, t, 10)
            for t in topics}
    executor, end = _connected(ros_context, node, probe, pubs)
    foreign = np.where(frame.labels == 3, 1, 0).astype(np.uint16)  # the small box
    header = numpy_to_image(frame.rgb, "rgb8").header
    header.stamp.sec, header.frame_id = 9, "camera_color_optical_frame"
    pubs[topics[0]].publish(numpy_to_image(frame.labels, "mono16", header))
    pubs[topics[1]].publish(numpy_to_image(np.ones(frame.labels.shape, np.float32), "32FC1",
                                           header))
    pubs[topics[2]].publish(numpy_to_image(frame.depth, "32FC1", header))
    pubs[topics[3]].publish(camera_info_msg(frame.intrinsics, header))
    publish_scores_and_samples(pubs, header)
    for _ in range(20):  # without the anomaly labels of the frame nothing is planned
        executor.spin_once(timeout_sec=0.05)
    assert not got["info"]
    pubs[topics[4]].publish(numpy_to_image(foreign, "mono16", header))
    while time.monotonic() < end and not (got["info"] and got["safe"]):
        executor.spin_once(timeout_sec=0.05)
    info, safe = image_to_numpy(got["info"][0]), image_to_numpy(got["safe"][0])
    instances = set(info[:, INFO_COLUMNS.index("instance")].astype(int).tolist())
    assert instances and 3 not in instances and not (safe == 3).any()
    node.destroy_node()
    probe.destroy_node()


def test_samples_arriving_after_the_labels_are_used_and_a_missing_partner_is_counted(
        ros_context):
    """DDS gives no order across topics: the risk must come from the frame's own samples
    whenever they arrive, and a frame whose samples never come is dropped and counted."""
    frame = _staged_frame()
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("workspace_polygon", value="0.3,0.24; 0.7,0.24; 0.7,0.76; 0.3,0.76"),
        Parameter("max_risk", value=1.0)])
    probe = Node("grasp_probe_order", context=ros_context)
    got = []
    probe.create_subscription(Image, "grasp/candidate_info", got.append, 10)
    pubs = {t: probe.create_publisher(m, t, 10) for t, m in (
        ("segmentation/instance_labels", Image), ("segmentation/confidence", Image),
        ("segmentation/instance_scores", Image), ("segmentation/sample_labels", Image),
        ("camera/depth/image_raw", Image), ("camera/color/camera_info", CameraInfo))}
    executor, end = _connected(ros_context, node, probe, pubs)
    # every sample cuts the small box into a checkerboard of two instances: any cup on it
    # touches both, so its risk is 1; the other boxes are whole in every sample
    v, u = np.indices(frame.labels.shape)
    split = np.where((frame.labels == 3) & ((u + v) % 2 == 1), 9, frame.labels)
    samples = np.repeat(split.astype(np.uint16)[:, :, None], 4, axis=2)
    for sec in (20, 21):
        header = numpy_to_image(frame.rgb, "rgb8").header
        header.stamp.sec, header.frame_id = sec, "camera_color_optical_frame"
        pubs["segmentation/instance_labels"].publish(
            numpy_to_image(frame.labels, "mono16", header))
        pubs["segmentation/confidence"].publish(
            numpy_to_image(np.ones(frame.labels.shape, np.float32), "32FC1", header))
        pubs["camera/depth/image_raw"].publish(numpy_to_image(frame.depth, "32FC1", header))
        pubs["camera/color/camera_info"].publish(camera_info_msg(frame.intrinsics, header))
        for _ in range(5):
            executor.spin_once(timeout_sec=0.02)
        if sec == 21:  # frame 20's scores and samples never come
            publish_scores_and_samples(pubs, header, samples)
    while time.monotonic() < end and not got:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(10):
        executor.spin_once(timeout_sec=0.02)
    assert [m.header.stamp.sec for m in got] == [21]
    info = image_to_numpy(got[0])
    risk = dict(zip(info[:, INFO_COLUMNS.index("instance")].astype(int),
                    info[:, INFO_COLUMNS.index("risk")], strict=True))
    assert risk[3] == 1.0  # the samples of frame 21, though they came after its labels
    assert all(risk[i] == 0.0 for i in risk if i != 3)
    assert node.sync.dropped >= 1  # frame 20's labels, confidence, depth and info
    node._publish_diagnostics()
    assert int(node.health.info["sync_dropped"]) >= 1
    node.destroy_node()
    probe.destroy_node()
