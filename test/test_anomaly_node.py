"""The anomaly node on sim RGB-D frames: outputs carry the input stamp, the alert reports,
bad parameters are refused at startup and bad frames are dropped."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from perception_nodes.nodes.anomaly import AnomalyNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.messages import camera_info_msg
from perception_nodes.ros.params import ParameterValueError
from perception_nodes.sim.cell import CellConfig, PickingCell


@pytest.mark.parametrize("method", ["model", "region_grow"])
def test_outputs_match_the_stamp_and_the_alert_reports(ros_context, smoke_models, method):
    node = AnomalyNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)),
        Parameter("prompt_method", value=method), Parameter("num_points", value=8),
        Parameter("min_score", value=0.0)])
    probe = Node("anomaly_probe", context=ros_context)
    got = {"labels": [], "score": [], "alert": []}
    probe.create_subscription(Image, "anomaly/instance_labels", got["labels"].append, 10)
    probe.create_subscription(Image, "anomaly/score", got["score"].append, 10)
    probe.create_subscription(DiagnosticArray, "anomaly/alert", got["alert"].append, 10)
    pubs = {k: probe.create_publisher(t, f"camera/{k}", 10) for k, t in (
        ("color/image_raw", Image), ("depth/image_raw", Image),
        ("color/camera_info", CameraInfo))}
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    cfg = CellConfig(width=96, height=72, min_items=4, max_items=6, num_foreign=2)
    with PickingCell(cfg, seed=3) as cell:
        frame = cell.render()
    end = time.monotonic() + 20
    while time.monotonic() < end and not all(p.get_subscription_count() for p in
                                             pubs.values()):
        executor.spin_once(timeout_sec=0.05)
    for sec, depth in ((10, frame.depth[:10]), (11, frame.depth), (12, frame.depth)):
        for key, msg in (("color/image_raw", numpy_to_image(frame.rgb, "rgb8")),
                         ("depth/image_raw", numpy_to_image(depth, "32FC1")),
                         ("color/camera_info", camera_info_msg(frame.intrinsics, Header()))):
            msg.header.stamp.sec, msg.header.frame_id = sec, "camera_color_optical_frame"
            pubs[key].publish(msg)
    while time.monotonic() < end and len(got["alert"]) < 2:
        executor.spin_once(timeout_sec=0.05)
    assert node.health.counters["malformed"] == 1  # depth not aligned to the image
    for key in got:
        assert [m.header.stamp.sec for m in got[key]] == [11, 12], key
    labels, score = image_to_numpy(got["labels"][0]), image_to_numpy(got["score"][0])
    assert labels.shape == (72, 96) and labels.dtype == np.uint16
    assert score.shape == (72, 96) and score.dtype == np.float32
    status = got["alert"][0].status[0]
    values = {kv.key: kv.value for kv in status.values}
    count = int(values["count"])
    assert count == len(np.unique(labels[labels > 0]))
    assert status.level == (DiagnosticStatus.WARN if count else DiagnosticStatus.OK)
    if count:
        assert int(values["largest_area_px"]) >= np.bincount(labels.ravel())[1:].max()
    node.release_io()
    node.destroy_node()


@pytest.mark.parametrize("bad", [Parameter("floor_plane", value="0,0,2,1"),
                                 Parameter("floor_plane", value="a,b"),
                                 Parameter("workspace_polygon", value="0,0; 1,1"),
                                 Parameter("sampler", value="grid")])
def test_bad_parameters_are_refused_at_startup(ros_context, smoke_models, bad):
    with pytest.raises(ParameterValueError):
        AnomalyNode(context=ros_context, parameter_overrides=[
            Parameter("models_dir", value=str(smoke_models)), bad])


@pytest.mark.parametrize("bad", [Parameter("recentre", value=4),
                                 Parameter("mask_threshold", value=1.5)])
def test_out_of_range_parameters_are_refused_by_their_descriptors(ros_context, smoke_models,
                                                                  bad):
    from rclpy.exceptions import InvalidParameterValueException

    with pytest.raises(InvalidParameterValueException, match=bad.name):
        AnomalyNode(context=ros_context, parameter_overrides=[
            Parameter("models_dir", value=str(smoke_models)), bad])
