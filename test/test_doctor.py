"""`perception doctor` against a deliberately misconfigured stack in namespace cell7:
camera_ingest reads a driver whose colour is published best effort (its subscription is
reliable), whose depth topic is misnamed, and grasp_regions gets depth in the wrong encoding
and a camera its calibration was not made for. Each problem is one line with its fix."""

import threading
import time

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.nodes.camera_ingest import CameraIngestNode
from perception_nodes.nodes.grasp_regions import GraspRegionsNode
from perception_nodes.ros.calibration import SIM_CALIBRATION_CAMERA
from perception_nodes.ros.doctor import diagnose, format_report
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.messages import camera_info_msg
from perception_nodes.ros.qos import qos_by_name

CAM = PinholeIntrinsics.from_fov(64, 48, 45.0)


def test_the_doctor_names_each_misconfiguration_with_its_fix(ros_context):
    ingest = CameraIngestNode(context=ros_context, namespace="cell7", parameter_overrides=[
        Parameter("source", value="driver"),
        Parameter("driver_color_topic", value="/drv/color/image_raw"),
        Parameter("driver_depth_topic", value="/drv/depth/image_rect"),  # misnamed
        Parameter("driver_info_topic", value="/drv/color/camera_info")])
    regions = GraspRegionsNode(context=ros_context, namespace="cell7", parameter_overrides=[
        Parameter("calibration_camera", value=SIM_CALIBRATION_CAMERA)])
    driver = Node("fake_driver", context=ros_context)
    sensor = qos_by_name("sensor_data")  # best effort, as many camera drivers publish
    pubs = {"color": driver.create_publisher(Image, "/drv/color/image_raw", sensor),
            "info": driver.create_publisher(CameraInfo, "/drv/color/camera_info", 10),
            "depth": driver.create_publisher(Image, "/drv/depth/image_raw", 10),
            "cell_info": driver.create_publisher(CameraInfo, "/cell7/camera/color/camera_info",
                                                 10),
            "cell_depth": driver.create_publisher(Image, "/cell7/camera/depth/image_raw", 10)}
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (ingest, regions, driver):
        executor.add_node(node)
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            header = numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8").header
            header.frame_id = "camera_color_optical_frame"
            pubs["color"].publish(numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8",
                                                 header))
            for key in ("info", "cell_info"):
                pubs[key].publish(camera_info_msg(CAM, header))
            pubs["depth"].publish(numpy_to_image(np.ones((48, 64), np.float32), "32FC1",
                                                 header))
            pubs["cell_depth"].publish(numpy_to_image(np.ones((48, 64), np.uint8), "mono8",
                                                      header))
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=stream, daemon=True)
    spinner.start()
    try:
        time.sleep(1.0)
        report = diagnose(ros_context, "cell7", seconds=2.0)
    finally:
        stop.set()
        spinner.join(timeout=5)
        for node in (ingest, regions, driver):
            node.destroy_node()
    problems = report["problems"]
    text = format_report(report)
    assert sorted(report["nodes"]) == ["camera_ingest", "grasp_regions"], text
    assert any("subscribes /drv/color/image_raw reliable; the publisher offers best effort"
               in p and "qos_subscribe:=sensor_data" in p for p in problems), text
    assert any("needs /drv/depth/image_rect" in p and "nobody publishes it" in p
               and "/drv/depth/image_raw" in p for p in problems), text
    assert any("/cell7/camera/depth/image_raw carries mono8; grasp_regions reads 32FC1 or "
               "16UC1" in p for p in problems), text
    assert any("grasp_regions: the calibration was made for a 640x480 camera" in p
               for p in problems), text
    assert any("nobody publishes" in p and "segmentation/instance_labels" in p
               for p in problems), text
    info = [i for i in report["nodes"]["camera_ingest"]["inputs"]
            if i["topic"] == "/drv/color/camera_info"][0]
    assert info["qos_compatible"] and info["rate_hz"] > 1 and info["size"] == "64x48"
