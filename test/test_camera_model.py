import numpy as np
import pytest

from perception_nodes.core.camera_model import (
    PinholeIntrinsics,
    invert_pose,
    look_at,
    matrix_from_quaternion,
    pose_matrix,
    quaternion_from_matrix,
    transform_points,
)
from perception_nodes.core.conventions import depth_m_to_mm, depth_mm_to_m


def test_from_fov_centres_principal_point_and_sets_focal_length():
    k = PinholeIntrinsics.from_fov(640, 480, 90.0)
    assert (k.cx, k.cy) == (319.5, 239.5)
    assert k.fx == pytest.approx(240.0)  # tan(45 deg) = 1 -> f = H / 2


def test_from_matrix_inverts_matrix():
    intr = PinholeIntrinsics(64, 48, 50.0, 51.0, 31.5, 23.25)
    assert PinholeIntrinsics.from_matrix(intr.matrix, 64, 48) == intr
    assert PinholeIntrinsics.from_matrix(intr.matrix.ravel().tolist(), 64, 48) == intr


def test_project_backproject_round_trip():
    k = PinholeIntrinsics(64, 48, 50.0, 55.0, 31.5, 23.5)
    pts = np.array([[0.1, -0.05, 0.8], [0.0, 0.0, 1.0], [-0.2, 0.1, 2.0]])
    uv = k.project(pts)
    assert uv[1] == pytest.approx([31.5, 23.5])
    back = k.backproject(uv[:, 0], uv[:, 1], pts[:, 2])
    np.testing.assert_allclose(back, pts, atol=1e-12)


def test_look_at_overhead_maps_world_axes_to_image_axes():
    pose = look_at([0, 0, 1], [0, 0, 0], [0, 1, 0])
    rot = pose[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot[:, 0], [1, 0, 0], atol=1e-12)   # image right = world +x
    np.testing.assert_allclose(rot[:, 1], [0, -1, 0], atol=1e-12)  # image down = world -y
    np.testing.assert_allclose(rot[:, 2], [0, 0, -1], atol=1e-12)  # looking down
    with pytest.raises(ValueError):
        look_at([0, 0, 1], [0, 0, 0], [0, 0, 1])


def test_quaternion_round_trip_and_pose_inverse():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        np.testing.assert_allclose(quaternion_from_matrix(matrix_from_quaternion(q)), q,
                                   atol=1e-9)
        pose = pose_matrix(rng.normal(size=3), q)
        pts = rng.normal(size=(5, 3))
        np.testing.assert_allclose(transform_points(invert_pose(pose),
                                                    transform_points(pose, pts)), pts, atol=1e-9)


def test_depth_unit_conversion_keeps_invalid_invalid():
    m = np.array([[0.5, np.nan], [0.0, 70.0]], dtype=np.float32)
    mm = depth_m_to_mm(m)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[500, 0], [0, 0]]
    back = depth_mm_to_m(np.array([[500, 0]], dtype=np.uint16))
    assert back[0, 0] == pytest.approx(0.5)
    assert np.isnan(back[0, 1])
