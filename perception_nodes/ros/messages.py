"""Standard messages built from and read into core types (CameraInfo, Pose, arrays)."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from perception_nodes.core.camera_model import (
    PinholeIntrinsics,
    pose_matrix,
    quaternion_from_matrix,
)


def camera_info_msg(intrinsics: PinholeIntrinsics, header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera (plumb_bob, zero distortion)."""
    k = intrinsics.matrix
    msg = CameraInfo(header=header, height=intrinsics.height, width=intrinsics.width,
                     distortion_model="plumb_bob")
    msg.d = [0.0] * 5
    msg.k = k.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
    return msg


# a focal length beyond this many image widths is no lens a bin camera has (and overflows
# the per-pixel geometry): refuse it rather than plan on it
MAX_FOCAL_WIDTHS = 100.0


def intrinsics_from_camera_info(msg: CameraInfo, image_shape: tuple[int, ...] | None = None
                                ) -> PinholeIntrinsics:
    """PinholeIntrinsics from CameraInfo's K and size, for an image of ``image_shape``
    ``(H, W, ...)`` when given (the frame the intrinsics will be applied to).

    Raises:
        ValueError: K unset, not finite, a focal length that is not positive or absurd
            (over ``MAX_FOCAL_WIDTHS`` image widths), a size of zero, or a size other than
            the image's.
    """
    k = np.asarray(msg.k, dtype=float).reshape(3, 3)
    if not np.isfinite(k).all():
        raise ValueError("CameraInfo K has a non-finite value")
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError("CameraInfo has no focal length (K is unset)")
    if msg.width <= 0 or msg.height <= 0:
        raise ValueError(f"CameraInfo size {msg.width}x{msg.height} is empty")
    if image_shape is not None and (msg.height, msg.width) != tuple(image_shape[:2]):
        raise ValueError(f"camera_info is {msg.width}x{msg.height}, the image "
                         f"{image_shape[1]}x{image_shape[0]}")
    if max(k[0, 0], k[1, 1]) > MAX_FOCAL_WIDTHS * max(msg.width, msg.height):
        raise ValueError(f"CameraInfo focal length {max(k[0, 0], k[1, 1]):.3g} px is not a "
                         f"lens for a {msg.width}x{msg.height} image")
    return PinholeIntrinsics.from_matrix(k, msg.width, msg.height)


def pose_msg(matrix: np.ndarray) -> Pose:
    """geometry_msgs/Pose of a 4x4 rigid transform."""
    q = quaternion_from_matrix(matrix[:3, :3])
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in matrix[:3, 3])
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (
        float(v) for v in q)
    return msg


# how far from unit length a pose's quaternion may be (float rounding of a real rotation)
QUATERNION_NORM_TOLERANCE = 1e-3


def matrix_from_pose_msg(msg: Pose) -> np.ndarray:
    """4x4 rigid transform of a geometry_msgs/Pose.

    Raises:
        ValueError: a non-finite value, or a quaternion that is not unit length (within
            ``QUATERNION_NORM_TOLERANCE``): not a rotation, so not a pose.
    """
    o, t = msg.orientation, msg.position
    q = np.array([o.x, o.y, o.z, o.w])
    pos = np.array([t.x, t.y, t.z])
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(pos))):
        raise ValueError("pose has a non-finite value")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(f"pose quaternion has norm {norm:.6g}, not 1: not a rotation")
    return pose_matrix(pos, q)


def labelled_array(values: np.ndarray, labels: list[str]) -> Float32MultiArray:
    """Float32MultiArray of shape ``(len(values),)`` with dimension label ``labels`` joined.

    The layout's single dimension is labelled with the comma-separated field names, so the
    message documents itself in a bag.
    """
    msg = Float32MultiArray()
    values = np.asarray(values, dtype=np.float32).ravel()
    msg.layout.dim = [MultiArrayDimension(label=",".join(labels), size=values.size,
                                          stride=values.size)]
    msg.data = values.tolist()
    return msg


def stamp_ns(stamp) -> int:
    """A ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# a stamp this far ahead of the receiver's clock is not clock skew but a wrong stamp
MAX_FUTURE_S = 1.0


def frame_age_s(now_ns: int, stamp) -> float | None:
    """Seconds from ``stamp`` to ``now_ns``, or None when the stamp cannot be a capture time:
    zero (unset), negative, or more than ``MAX_FUTURE_S`` in the future. Latency statistics
    skip such frames instead of being poisoned by them."""
    ns = stamp_ns(stamp)
    if ns <= 0:
        return None
    age = (now_ns - ns) * 1e-9
    return None if age < -MAX_FUTURE_S else max(0.0, age)
