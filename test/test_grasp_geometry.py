import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_geometry import (
    fit_plane,
    grasp_pose,
    interior_pixel,
    surface_patch,
    topmost_instance,
)


def test_interior_pixel_is_centre_of_a_square():
    mask = np.zeros((9, 12), bool)
    mask[2:7, 3:8] = True
    assert interior_pixel(mask) == (5, 4)
    assert interior_pixel(np.zeros((3, 3), bool)) is None


def test_fit_plane_recovers_tilted_plane_facing_camera():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-0.02, 0.02, (50, 2))
    z = 0.8 + 0.5 * xy[:, 0]
    _, normal, rms = fit_plane(np.c_[xy, z])
    expected = np.array([0.5, 0.0, -1.0]) / np.linalg.norm([0.5, 0.0, -1.0])
    np.testing.assert_allclose(normal, expected, atol=1e-9)
    assert rms < 1e-12
    with pytest.raises(ValueError):
        fit_plane(np.array([[0, 0, 1.0], [np.nan, 0, 1]]))


def test_grasp_pose_z_is_normal_and_frame_is_right_handed():
    pose = grasp_pose(np.array([0.1, 0.2, 0.9]), np.array([0.0, 0.0, -1.0]))
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1])
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_allclose(pose[:3, 3], [0.1, 0.2, 0.9])


def test_surface_patch_and_topmost_instance():
    k = PinholeIntrinsics(20, 20, 20.0, 20.0, 9.5, 9.5)
    depth = np.full((20, 20), 1.0, np.float32)
    labels = np.zeros((20, 20), np.uint16)
    labels[2:8, 2:8], labels[10:18, 10:18] = 1, 2
    depth[labels == 2] = 0.7
    depth[12, 12] = np.nan
    assert topmost_instance(labels, depth, min_pixels=10) == 2
    assert topmost_instance(labels, depth, min_pixels=100) == 0
    pts = surface_patch(depth, k, 14, 14, 2, labels == 2)
    assert pts.shape == (13, 3)
    np.testing.assert_allclose(pts[:, 2], 0.7, rtol=1e-6)


def test_oracle_grasp_skips_items_too_thin_or_curved_for_a_cup():
    from perception_nodes.core.grasp_geometry import oracle_grasp

    k = PinholeIntrinsics(80, 60, 100.0, 100.0, 39.5, 29.5)
    depth = np.full((60, 80), 1.0, np.float32)
    labels = np.zeros((60, 80), np.uint16)
    labels[5:55, 5:8] = 1      # a thin stick, topmost
    depth[labels == 1] = 0.6
    labels[10:40, 30:60] = 2   # a flat box below it
    depth[labels == 2] = 0.8
    label, pose = oracle_grasp(labels, depth, k, min_pixels=50, cup_radius_m=0.02)
    assert label == 2
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=1e-9)
    u, v = k.project(pose[:3, 3][None])[0]
    assert labels[int(round(v)), int(round(u))] == 2
    assert oracle_grasp(labels, depth, k, min_pixels=50, cup_radius_m=0.02,
                        exclude=frozenset({2})) is None  # failed before: not again
    yy, xx = np.mgrid[0:60, 0:80]
    depth[labels == 2] = 0.8 + 0.005 * ((xx[labels == 2] % 2) * 2 - 1)  # a rough surface
    assert oracle_grasp(labels, depth, k, min_pixels=50, cup_radius_m=0.02) is None
