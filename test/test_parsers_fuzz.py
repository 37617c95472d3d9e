"""The conversions and parsers every node reads its input with, fuzzed (hypothesis): any
message either converts to what the docstring promises or raises the documented ValueError;
nothing else escapes."""

import numpy as np
from geometry_msgs.msg import Pose
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.ros.calibration import parse_calibration_camera
from perception_nodes.ros.grasp_messages import parse_pairs
from perception_nodes.ros.image_conversion import (
    DEPTH_RANGE_M,
    ImageConversionError,
    image_to_depth_m,
    image_to_numpy,
)
from perception_nodes.ros.messages import (
    frame_age_s,
    intrinsics_from_camera_info,
    matrix_from_pose_msg,
)
from perception_nodes.ros.params import ParameterValueError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True)
ENCODINGS = st.sampled_from(["rgb8", "bgr8", "mono8", "mono16", "16UC1", "32FC1", "16UC8",
                             "8UC3", "32FC2", "yuv422", "", "16UC0", "64FC1"])
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def images(draw):
    width, height = draw(st.integers(-2, 40)), draw(st.integers(-2, 30))
    step = draw(st.one_of(st.integers(0, 200), st.just(max(width, 0) * 4)))
    size = draw(st.one_of(st.just(max(step, 0) * max(height, 0)), st.integers(0, 4000)))
    data = draw(st.binary(min_size=min(size, 4000), max_size=min(size, 4000)))
    return Image(width=max(width, 0), height=max(height, 0), step=max(step, 0),
                 encoding=draw(ENCODINGS), is_bigendian=draw(st.integers(0, 1)), data=data)


@FUZZ
@given(images())
def test_image_to_numpy_converts_or_refuses(msg):
    try:
        arr = image_to_numpy(msg)
    except ImageConversionError:
        return
    assert arr.shape[:2] == (msg.height, msg.width)


@FUZZ
@given(images())
def test_depth_is_metres_in_range_or_nan(msg):
    try:
        depth = image_to_depth_m(msg)
    except ImageConversionError:
        return
    assert depth.dtype == np.float32
    finite = depth[np.isfinite(depth)]
    assert ((finite >= DEPTH_RANGE_M[0]) & (finite <= DEPTH_RANGE_M[1])).all()


@FUZZ
@given(st.lists(floats, min_size=9, max_size=9), st.integers(-5, 5000), st.integers(-5, 5000))
def test_camera_info_gives_finite_positive_intrinsics_or_refuses(k, width, height):
    msg = CameraInfo(width=max(width, 0), height=max(height, 0), k=k)
    try:
        cam = intrinsics_from_camera_info(msg)
    except ValueError:
        return
    values = np.array([cam.fx, cam.fy, cam.cx, cam.cy])
    assert np.isfinite(values).all() and cam.fx > 0 and cam.fy > 0


@FUZZ
@given(st.lists(floats, min_size=7, max_size=7))
def test_a_pose_is_a_rigid_transform_or_refused(values):
    msg = Pose()
    (msg.position.x, msg.position.y, msg.position.z, msg.orientation.x, msg.orientation.y,
     msg.orientation.z, msg.orientation.w) = values
    try:
        m = matrix_from_pose_msg(msg)
    except ValueError:
        return
    rot = m[:3, :3]
    assert np.isfinite(m).all()
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-2)


TEXT = st.text(alphabet="0123456789.,;x -einfa", max_size=40)


@FUZZ
@given(TEXT)
def test_parameter_texts_parse_or_refuse(text):
    for parse, error in ((parse_pairs, ValueError), (parse_plane, ValueError),
                         (parse_calibration_camera, ParameterValueError)):
        try:
            out = parse(text)
        except error:
            continue
        if out is not None:
            assert np.isfinite(np.asarray(out, float)).all(), (parse.__name__, text)


@FUZZ
@given(st.integers(-2**31, 2**31 - 1), st.integers(0, 999_999_999),
       st.integers(0, 2**62))
def test_frame_age_is_none_or_non_negative(sec, nanosec, now_ns):
    from builtin_interfaces.msg import Time

    age = frame_age_s(now_ns, Time(sec=sec, nanosec=nanosec))
    assert age is None or age >= 0.0
