"""Candidates in the robot's base frame: a pose round-trips camera -> base -> camera, and in a
staged sim scene the grasp_regions node's candidates in the base frame (the camera pose
given as the hand-eye parameter) land on the ground-truth items within 1 cm."""

import numpy as np
import pybullet as p
import pytest
from geometry_msgs.msg import PoseArray
from hostile import HostileRig, image
from hostile import info as camera_info
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.camera_model import (
    invert_pose,
    matrix_from_quaternion,
    quaternion_from_matrix,
)
from perception_nodes.nodes.grasp_regions import INFO_COLUMNS, GraspRegionsNode
from perception_nodes.ros.image_conversion import image_to_numpy
from perception_nodes.ros.messages import matrix_from_pose_msg
from perception_nodes.ros.params import ParameterValueError
from perception_nodes.ros.robot_frames import parse_pose, to_base
from perception_nodes.sim.catalog import ItemSpec
from perception_nodes.sim.cell import CellConfig, PickingCell


def _pose_text(matrix: np.ndarray) -> str:
    q = quaternion_from_matrix(matrix[:3, :3])
    return ",".join(f"{v:.9f}" for v in (*matrix[:3, 3], *q))


def test_a_pose_round_trips_camera_base_camera():
    base_camera = parse_pose("0.4,-0.2,1.1,0.9238795,0.3826834,0,0")  # 135 deg about x
    in_camera = np.eye(4)
    in_camera[:3, :3] = matrix_from_quaternion(np.array([0.1, 0.2, 0.3, 0.9]) /
                                               np.linalg.norm([0.1, 0.2, 0.3, 0.9]))
    in_camera[:3, 3] = [0.05, -0.02, 0.8]
    (in_base,) = to_base(base_camera, [in_camera])
    np.testing.assert_allclose(invert_pose(base_camera) @ in_base, in_camera, atol=1e-12)
    assert parse_pose("") is None
    for bad in ("1,2,3", "0,0,0,0,0,0,2", "0,0,nan,0,0,0,1"):
        with pytest.raises(ParameterValueError):
            parse_pose(bad)


def test_candidates_in_the_base_frame_land_on_the_items(ros_context):
    boxes = [ItemSpec("box", "a", (0.04, 0.03, 0.02), 0.2, (0.8, 0.3, 0.2, 1.0)),
             ItemSpec("box", "b", (0.03, 0.04, 0.025), 0.2, (0.2, 0.5, 0.8, 1.0))]
    with PickingCell(CellConfig(width=320, height=240), seed=3) as cell:
        cell.stage([(boxes[0], [-0.07, 0.02, 0.05], [0, 0, 0, 1]),
                    (boxes[1], [0.07, -0.03, 0.05], [0, 0, 0.2588190, 0.9659258])])
        frame = cell.render()
        truth = {it.label: (p.getBasePositionAndOrientation(it.body,
                                                           physicsClientId=cell.client),
                            it.spec.size) for it in cell.items.values()}
        world_camera = cell.home_camera_pose
    node = GraspRegionsNode(context=ros_context, parameter_overrides=[
        Parameter("base_frame", value="world"),
        Parameter("camera_pose_in_base", value=_pose_text(world_camera))])
    rig = HostileRig(ros_context, node, {
        "segmentation/instance_labels": Image, "segmentation/confidence": Image,
        "segmentation/instance_scores": Image, "segmentation/sample_labels": Image,
        "camera/depth/image_raw": Image, "camera/color/camera_info": CameraInfo})
    got = {"base": [], "info": []}
    rig.probe.create_subscription(PoseArray, "grasp/candidates_base", got["base"].append, 10)
    rig.probe.create_subscription(Image, "grasp/candidate_info", got["info"].append, 10)
    rig.stamp = 3  # send() stamps the next second
    rig.send({"segmentation/instance_labels": image(frame.labels, "mono16"),
              "segmentation/confidence": image(np.ones(frame.labels.shape, np.float32),
                                               "32FC1"),
              "segmentation/instance_scores": image(np.array([[0.9, 0.9]], np.float32),
                                                    "32FC1"),
              "segmentation/sample_labels": image(np.zeros((1, 1), np.uint16), "mono16"),
              "camera/depth/image_raw": image(frame.depth, "32FC1"),
              "camera/color/camera_info": camera_info(frame.intrinsics)})
    rig.spin_until(lambda: got["base"] and got["info"])
    rig.close()
    base = got["base"][0]
    assert base.header.frame_id == "world" and base.header.stamp.sec == 4
    info = image_to_numpy(got["info"][0])
    assert len(base.poses) == 2 == len(info)
    for pose, row in zip(base.poses, info, strict=True):
        (position, quaternion), half = truth[int(row[INFO_COLUMNS.index("instance")])]
        # the grasp point in the item's own frame: on its top face, inside its outline
        item = np.eye(4)
        item[:3, :3] = matrix_from_quaternion(np.array(quaternion))
        item[:3, 3] = position
        local = (invert_pose(item) @ matrix_from_pose_msg(pose))[:3, 3]
        assert abs(local[2] - half[2]) < 0.01
        assert abs(local[0]) < half[0] + 0.01 and abs(local[1]) < half[1] + 0.01
        approach = matrix_from_pose_msg(pose)[:3, 2]
        assert approach[2] > 0.95  # z out of the top face: up in the world
