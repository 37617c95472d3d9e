"""grasp_capture: a pick request, the gauge and a settled frame make one stored sample."""

import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from hostile import CAPTURE_INPUTS, HostileRig
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from perception_nodes.capture.grasp_dataset import load_sample, read_manifest
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_geometry import cup_footprint_mask, grasp_pose
from perception_nodes.nodes.grasp_capture import GraspCaptureNode
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.messages import camera_info_msg, pose_msg

CAM = PinholeIntrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)


def test_cup_footprint_mask_projects_active_cups_as_disks():
    pose = grasp_pose(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0]))
    cups = np.array([[0.0, 0.0], [0.2, 0.0]])
    mask = cup_footprint_mask((48, 64), CAM, pose, cups, 0.05, np.array([True, False]))
    # radius 0.05 m at 1 m = 3 px around the principal point; the inactive cup is absent
    assert mask[23, 31] == 1 and mask[23, 31 + 5] == 0 and mask[:, 40:].sum() == 0
    assert 20 <= mask.sum() <= 45  # about pi * 3.5^2 with the rim pixels
    both = cup_footprint_mask((48, 64), CAM, pose, cups, 0.05, np.array([True, True]))
    assert both[23, 43] == 1  # 0.2 m at 1 m = 12 px along +u


def test_a_held_grasp_becomes_one_sample_and_a_failed_one_none(ros_context, tmp_path):
    node = GraspCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("dataset_dir", value=str(tmp_path)),
        Parameter("cup_offsets_m", value="0,0; 0.2,0"), Parameter("cup_radius_m", value=0.05),
        Parameter("max_wait_frames", value=5)])
    probe = Node("capture_probe", context=ros_context)
    pub_img = probe.create_publisher(Image, "camera/color/image_raw", 10)
    pub_info = probe.create_publisher(CameraInfo, "camera/color/camera_info", 10)
    pub_req = probe.create_publisher(PoseStamped, "arm/pick_request", 10)
    pub_gauge = probe.create_publisher(Float32MultiArray, "arm/suction_gauge", 10)
    pub_depth = probe.create_publisher(Image, "camera/depth/image_raw", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    end = time.monotonic() + 20
    while not (pub_img.get_subscription_count() and pub_gauge.get_subscription_count()
               and pub_depth.get_subscription_count()) and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)

    def spin(n: int = 20) -> None:
        for _ in range(n):
            executor.spin_once(timeout_sec=0.01)

    before = np.full((48, 64, 3), 90, np.uint8)
    after = before.copy()
    after[20:27, 28:35] = 10  # the item left
    pose = grasp_pose(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0]))
    depth = np.full((48, 64), 1.0, np.float32)
    depth[20:27, 28:35] = 0.9  # the item, 10 cm above the floor

    def pick(vacuum: list[float], sec: int) -> None:
        frame = numpy_to_image(before, "rgb8")
        frame.header.stamp.sec, frame.header.frame_id = sec, "camera_color_optical_frame"
        pub_info.publish(camera_info_msg(CAM, frame.header))
        pub_depth.publish(numpy_to_image(depth, "32FC1", frame.header))
        pub_img.publish(frame)
        spin()
        req = PoseStamped(header=frame.header, pose=pose_msg(pose))
        pub_req.publish(req)
        spin()
        pub_gauge.publish(Float32MultiArray(data=vacuum))
        spin()
        for k in range(3):  # the arm's shadow, then the settled scene twice
            img = numpy_to_image(after if k else before[::-1].copy(), "rgb8")
            img.header.stamp.sec = sec + 1 + k
            pub_info.publish(camera_info_msg(CAM, img.header))  # a camera sends both
            pub_img.publish(img)
            spin()

    pick([65.0, 3.0], 10)  # the centre cup held
    pick([0.3, 0.2], 20)  # nothing held: not stored
    pub_gauge.publish(Float32MultiArray(data=[1.0, 2.0, 3.0]))  # no pick pending: ignored
    spin()
    entries = read_manifest(tmp_path)
    assert len(entries) == 1 and entries[0]["success"] and entries[0]["sealed_cups"] == 1
    sample = load_sample(tmp_path, entries[0])
    np.testing.assert_array_equal(sample["before"], before)
    np.testing.assert_array_equal(sample["after"], after)
    assert sample["grasp_mask"][23, 31] == 1 and sample["grasp_mask"][23, 43] == 0
    # the before frame's depth (matched by stamp) and camera matrix, for RGB-H adaptation
    np.testing.assert_array_equal(sample["before_depth"], depth)
    np.testing.assert_allclose(sample["camera_k"], CAM.matrix)
    assert node.health.counters["failed_grasps"] == 1 and node.health.counters["grasps"] == 2
    node.destroy_node()
    probe.destroy_node()


def test_a_pick_in_the_world_frame_is_stored_in_the_camera_frame(ros_context, tmp_path):
    """The topic contract allows picks in ``world``: with the camera's pose there
    (``camera/pose``) the sample's pose is the same grasp in the camera optical frame."""
    node = GraspCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("dataset_dir", value=str(tmp_path)), Parameter("cup_offsets_m", value="0,0"),
        Parameter("max_wait_frames", value=1)])
    rig = HostileRig(ros_context, node, CAPTURE_INPUTS)
    # the camera 1.2 m above the world origin, looking down (optical z along world -z),
    # turned 30 degrees about the vertical
    c, s_ = np.cos(np.deg2rad(30.0)), np.sin(np.deg2rad(30.0))
    world_camera = np.eye(4)
    world_camera[:3, :3] = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]]) @ np.diag([1, -1, -1])
    world_camera[:3, 3] = [0.1, -0.05, 1.2]
    in_camera = grasp_pose(np.array([0.02, -0.01, 1.0]), np.array([0.0, 0.0, -1.0]))
    frame = {"camera/color/image_raw": numpy_to_image(np.full((48, 64, 3), 90, np.uint8),
                                                      "rgb8"),
             "camera/color/camera_info": camera_info_msg(CAM, numpy_to_image(
                 np.zeros((1, 1), np.uint8), "mono8").header)}
    camera = PoseStamped(pose=pose_msg(world_camera))
    camera.header.frame_id = "world"
    request = PoseStamped(pose=pose_msg(world_camera @ in_camera))
    request.header.frame_id = "world"
    try:
        rig.send({"arm/pick_request": request, **frame})
        assert rig.spin_until(lambda: rig.counter("malformed") == 1)  # no camera pose yet
        assert "no transform to the camera" in node.health.last_error
        rig.send({"camera/pose": camera, **frame})
        rig.spin_until(lambda: node.camera_pose is not None)
        rig.send({"arm/pick_request": request})
        assert rig.spin_until(lambda: node.pending is not None)
        rig.send({"arm/suction_gauge": Float32MultiArray(data=[70.0])})
        rig.spin_until(lambda: node.pending is not None and node.pending.get("watch"))
        rig.send(frame)
        rig.send(frame)
        assert rig.spin_until(lambda: rig.counter("published") == 1), node.health.last_error
    finally:
        rig.close()
    sample = load_sample(tmp_path, read_manifest(tmp_path)[0])
    np.testing.assert_allclose(sample["pose"], in_camera, atol=1e-6)
