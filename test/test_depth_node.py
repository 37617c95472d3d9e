"""The depth node on sim frames: metric depth aligned to and stamped with the image, scaled
from the calibrated floor; bad parameters refused at startup, bad frames dropped."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.nodes.depth import DepthNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.messages import camera_info_msg
from perception_nodes.ros.params import ParameterValueError
from perception_nodes.sim.cell import CellConfig, PickingCell


def test_metric_depth_is_aligned_stamped_and_on_the_floor(ros_context, smoke_models):
    cfg = CellConfig(width=96, height=72, min_items=3, max_items=4)
    with PickingCell(cfg, seed=5) as cell:
        frame = cell.render()
        plane = cell.calibrate_floor_plane()
    node = DepthNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)),
        Parameter("floor_plane", value=",".join(f"{v:.6f}" for v in plane))])
    probe = Node("depth_probe", context=ros_context)
    got = []
    probe.create_subscription(Image, "camera/depth_mono/image_raw", got.append, 10)
    pubs = {k: probe.create_publisher(t, f"camera/color/{k}", 10)
            for k, t in (("image_raw", Image), ("camera_info", CameraInfo))}
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    end = time.monotonic() + 20
    while time.monotonic() < end and not all(p.get_subscription_count() for p in
                                             pubs.values()):
        executor.spin_once(timeout_sec=0.05)
    wrong = PinholeIntrinsics.from_fov(48, 36, 45.0)  # camera_info of another image size
    for sec, intr in ((10, wrong), (11, frame.intrinsics), (12, frame.intrinsics)):
        for key, msg in (("image_raw", numpy_to_image(frame.rgb, "rgb8")),
                         ("camera_info", camera_info_msg(intr, Header()))):
            msg.header.stamp.sec, msg.header.frame_id = sec, "camera_color_optical_frame"
            pubs[key].publish(msg)
    while time.monotonic() < end and len(got) < 2:
        executor.spin_once(timeout_sec=0.05)
    assert node.health.counters["malformed"] == 1
    assert [m.header.stamp.sec for m in got] == [11, 12]
    assert got[0].header.frame_id == "camera_color_optical_frame"
    depth = image_to_numpy(got[0])
    assert depth.shape == (72, 96) and depth.dtype == np.float32
    # the floor-plane scale puts the predicted floor on the calibrated one: whatever an
    # untrained model predicts, the scaled depth lies in the cell's range
    scale = float(node.health.info["scale"])
    assert scale > 0 and 0.5 < float(np.nanmedian(depth)) < 1.2
    # its calibration_camera is still the shipped one (the 640x480 sim camera): it says so
    status = node.health.status("depth")
    assert status.level == DiagnosticStatus.ERROR and "made for a 640x480" in status.message
    node.release_io()
    node.destroy_node()


@pytest.mark.parametrize("bad", [Parameter("floor_plane", value="0,0,2,1"),
                                 Parameter("floor_plane", value="0,0,-1,-0.9"),
                                 Parameter("workspace_polygon", value="0,0; 1,1"),
                                 Parameter("scale_mode", value="median")])
def test_bad_parameters_are_refused_at_startup(ros_context, smoke_models, bad):
    with pytest.raises(ParameterValueError):
        DepthNode(context=ros_context, parameter_overrides=[
            Parameter("models_dir", value=str(smoke_models)), bad])
