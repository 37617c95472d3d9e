"""Pinhole camera model and rigid transforms (numpy only).

Pixel coordinates follow OpenCV / ROS CameraInfo: pixel ``(u, v)`` has its centre at integer
coordinates, ``u`` to the right, ``v`` down. Points are in metres in the optical frame
(x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Intrinsics of an undistorted pinhole camera (``plumb_bob`` with zero distortion)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, fov_y_deg: float) -> PinholeIntrinsics:
        """Intrinsics of an OpenGL-style symmetric frustum with vertical field of view.

        The principal point sits at the image centre, ``(W - 1) / 2`` in pixel-centre
        coordinates, because an OpenGL frustum spans the outer edges of the border pixels.
        """
        if width <= 0 or height <= 0 or not 0.0 < fov_y_deg < 180.0:
            raise ValueError(f"bad camera size {width}x{height} or fov {fov_y_deg}")
        f = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2.0)
        return cls(width, height, float(f), float(f), (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> PinholeIntrinsics:
        """Intrinsics of a ``width`` x ``height`` image from its 3x3 camera matrix ``K``
        (the inverse of :attr:`matrix`)."""
        k = np.asarray(k, dtype=float).reshape(3, 3)
        return cls(int(width), int(height), float(k[0, 0]), float(k[1, 1]), float(k[0, 2]),
                   float(k[1, 2]))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K, float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project ``(N, 3)`` optical-frame points (metres) to ``(N, 2)`` pixels ``(u, v)``."""
        pts = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        z = pts[:, 2]
        return np.stack([self.fx * pts[:, 0] / z + self.cx, self.fy * pts[:, 1] / z + self.cy], 1)

    def backproject(self, u: np.ndarray, v: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Lift pixels with z-depth (metres) to optical-frame points, shape ``(..., 3)``."""
        u, v, z = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float), depth)
        return np.stack([(u - self.cx) / self.fx * z, (v - self.cy) / self.fy * z, z], -1)

    def depth_to_points(self, depth: np.ndarray) -> np.ndarray:
        """``(H, W)`` z-depth in metres to an ``(H, W, 3)`` optical-frame point image."""
        v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
        return self.backproject(u, v, depth)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """4x4 pose ``T_world_camera`` of an optical frame at ``eye`` looking at ``target``.

    ``up`` is the world direction that appears upwards in the image (optical -y).
    """
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    y = -(up - np.dot(up, z) * z)
    norm = np.linalg.norm(y)
    if norm < 1e-9:
        raise ValueError("up is parallel to the viewing direction")
    y /= norm
    x = np.cross(y, z)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to ``(N, 3)`` points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ pose[:3, :3].T + pose[:3, 3]


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform."""
    inv = np.eye(4)
    inv[:3, :3] = pose[:3, :3].T
    inv[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inv


def quaternion_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(x, y, z, w)`` of a 3x3 rotation matrix (w >= 0)."""
    m = np.asarray(rot, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion ``(x, y, z, w)``; normalises the input."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_matrix(position: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """4x4 pose from a position and an ``(x, y, z, w)`` quaternion."""
    pose = np.eye(4)
    pose[:3, :3] = matrix_from_quaternion(quaternion)
    pose[:3, 3] = position
    return pose
