"""CameraInfo that no camera sends is refused with the reason (a node drops and counts it)."""

import math

import pytest
from std_msgs.msg import Header

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.ros.messages import camera_info_msg, intrinsics_from_camera_info

GOOD = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=31.5, cy=23.5)


def _info(**changes):
    msg = camera_info_msg(GOOD, Header())
    k = list(msg.k)
    for index, value in changes.pop("k", {}).items():
        k[index] = value
    msg.k = k
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


def test_a_good_camera_info_gives_its_intrinsics():
    intr = intrinsics_from_camera_info(_info())
    assert (intr.fx, intr.cx, intr.width, intr.height) == (60.0, 31.5, 64, 48)


@pytest.mark.parametrize("changes,reason", [
    ({"k": {0: math.inf}}, "non-finite"),
    ({"k": {0: math.nan}}, "non-finite"),
    ({"k": {2: -math.inf}}, "non-finite"),
    ({"k": {0: 0.0}}, "no focal length"),
    ({"k": {4: -60.0}}, "no focal length"),
    ({"k": {0: 1e9}}, "not a lens"),
    ({"width": 0}, "empty"),
    ({"height": 0}, "empty"),
])
def test_an_impossible_camera_info_is_refused_with_the_reason(changes, reason):
    with pytest.raises(ValueError, match=reason):
        intrinsics_from_camera_info(_info(**changes))


def test_intrinsics_for_an_image_of_another_size_are_refused():
    assert intrinsics_from_camera_info(_info(), (48, 64, 3)).width == 64
    with pytest.raises(ValueError, match="camera_info is 64x48, the image 32x24"):
        intrinsics_from_camera_info(_info(), (24, 32))


def test_frame_age_skips_stamps_that_cannot_be_capture_times():
    from builtin_interfaces.msg import Time

    from perception_nodes.ros.messages import frame_age_s

    now = 100 * 10**9
    assert frame_age_s(now, Time(sec=99, nanosec=500_000_000)) == pytest.approx(0.5)
    assert frame_age_s(now, Time(sec=100, nanosec=300_000_000)) == 0.0  # clock skew
    assert frame_age_s(now, Time(sec=0, nanosec=0)) is None  # unset
    assert frame_age_s(now, Time(sec=102)) is None  # two seconds ahead


@pytest.mark.parametrize("quaternion,position,reason", [
    ((0.0, 0.0, 0.0, 2.0), (0.0, 0.0, 1.0), "norm 2"),
    ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0), "norm 0"),
    ((0.0, 0.0, 0.0, 1.0), (0.0, math.nan, 1.0), "non-finite"),
    ((math.inf, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0), "non-finite"),
])
def test_a_pose_that_is_no_rigid_transform_is_refused(quaternion, position, reason):
    from geometry_msgs.msg import Pose

    from perception_nodes.ros.messages import matrix_from_pose_msg

    msg = Pose()
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = quaternion
    msg.position.x, msg.position.y, msg.position.z = position
    with pytest.raises(ValueError, match=reason):
        matrix_from_pose_msg(msg)
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (0, 0, 0.6, 0.8)
    msg.position.x, msg.position.y, msg.position.z = (0.1, 0.2, 0.9)
    assert matrix_from_pose_msg(msg)[2, 3] == pytest.approx(0.9)
