"""The camera's pose in the robot's base frame (the user's hand-eye calibration), from a
parameter or from tf2 when it is installed, and poses carried from the camera optical frame
into the base frame."""

from __future__ import annotations

import numpy as np

from perception_nodes.core.camera_model import pose_matrix
from perception_nodes.ros.messages import QUATERNION_NORM_TOLERANCE
from perception_nodes.ros.params import ParameterValueError


def parse_pose(text: str) -> np.ndarray | None:
    """``'x,y,z,qx,qy,qz,qw'`` (m, unit quaternion) -> 4x4 transform; None for ''.

    Raises:
        ParameterValueError: not 7 finite numbers, or a quaternion that is not unit length.
    """
    if not text.strip():
        return None
    try:
        values = np.array([float(v) for v in text.replace(";", ",").split(",")])
    except ValueError as exc:
        raise ParameterValueError(f"a pose is 'x,y,z,qx,qy,qz,qw', got {text!r}") from exc
    if values.shape != (7,) or not np.isfinite(values).all():
        raise ParameterValueError(f"a pose is 'x,y,z,qx,qy,qz,qw', got {text!r}")
    if abs(np.linalg.norm(values[3:]) - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ParameterValueError(f"the quaternion of {text!r} is not unit length")
    return pose_matrix(values[:3], values[3:])


def to_base(base_camera: np.ndarray, poses: list[np.ndarray]) -> list[np.ndarray]:
    """4x4 poses in the camera optical frame -> the same poses in the base frame, given the
    camera's pose ``base_camera`` (``T_base_camera``)."""
    return [base_camera @ pose for pose in poses]


class TfCameraPose:
    """``T_base_camera`` looked up in tf2 (a hand-eye calibration published as a static
    transform), on a ROS install that has tf2_ros; ImportError where it does not."""

    def __init__(self, node, base_frame: str) -> None:
        from tf2_ros import Buffer, TransformListener  # not on PyPI: a full ROS install

        self.base_frame = base_frame
        self.buffer = Buffer()
        self.listener = TransformListener(self.buffer, node)

    def lookup(self, camera_frame: str) -> np.ndarray | None:
        """The newest transform, or None while tf2 has none."""
        from rclpy.time import Time

        try:
            tf = self.buffer.lookup_transform(self.base_frame, camera_frame, Time())
        except Exception:  # noqa: BLE001 - tf2's lookup errors: not (yet) available
            return None
        t, q = tf.transform.translation, tf.transform.rotation
        return pose_matrix(np.array([t.x, t.y, t.z]), np.array([q.x, q.y, q.z, q.w]))
