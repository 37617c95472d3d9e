"""Scale recovery and Table I's depth metrics on tiny exact arrays; the floor plane."""

import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import fit_floor_plane, height_above_plane, plane_depth
from perception_nodes.core.mono_depth import (
    depth_errors,
    floor_plane_scale,
    mean_errors,
    median_scale,
)

INTR = PinholeIntrinsics.from_fov(32, 24, 45.0)


def test_depth_errors_by_hand():
    gt = np.array([[1.0, 2.0]], np.float32)
    pred = np.array([[2.0, 2.0]], np.float32)
    e = depth_errors(gt, pred)
    assert e["abs_rel"] == pytest.approx(0.5) and e["sq_rel"] == pytest.approx(0.5)
    assert e["rmse"] == pytest.approx(np.sqrt(0.5))
    assert e["rmse_log"] == pytest.approx(np.sqrt(np.log(2) ** 2 / 2))
    assert (e["a1"], e["a2"], e["a3"]) == (0.5, 0.5, 0.5)  # a ratio of 2 > 1.25^3 = 1.95
    perfect = depth_errors(gt, gt)
    assert perfect["abs_rel"] == 0 and perfect["a1"] == 1


def test_depth_errors_cap_and_invalid_pixels():
    gt = np.array([[1.0, np.nan, 100.0]], np.float32)
    pred = np.array([[1.0, 5.0, 1.0]], np.float32)
    e = depth_errors(gt, pred, max_depth=80.0)  # only the first pixel counts
    assert e["abs_rel"] == 0 and e["a1"] == 1
    with pytest.raises(ValueError):
        depth_errors(np.full((2, 2), np.nan), np.ones((2, 2)))
    assert mean_errors([e, depth_errors(np.ones((1, 1)), np.full((1, 1), 2.0))])["abs_rel"] \
        == pytest.approx(0.5)


def test_median_scale_undoes_a_global_factor():
    gt = np.random.default_rng(0).uniform(0.5, 1.0, (6, 8))
    assert median_scale(gt, gt / 3.0, np.ones_like(gt, bool)) == pytest.approx(3.0)


def tilted_floor() -> np.ndarray:
    n = np.array([0.05, -0.1, -1.0])
    return np.array([*(n / np.linalg.norm(n)), 0.9])


def test_plane_depth_lies_on_the_plane_and_the_fit_recovers_it():
    plane = tilted_floor()
    floor = plane_depth(INTR, plane, (24, 32))
    assert np.all(floor > 0.8) and np.all(floor < 1.0)
    assert np.abs(height_above_plane(floor, INTR, plane)).max() < 1e-6
    refit = fit_floor_plane(INTR.depth_to_points(floor).reshape(-1, 3))
    assert np.allclose(refit, plane, atol=1e-5)


def test_floor_plane_scale_ignores_items_standing_on_the_floor():
    plane = tilted_floor()
    floor = plane_depth(INTR, plane, (24, 32))
    true = floor.copy()
    true[2:20, 2:30] -= 0.1  # items 10 cm tall covering two thirds of the floor
    true[8:12, 10:16] -= 0.05
    pred = true / 2.5        # a monocular prediction: right shape, unknown scale
    region = np.ones_like(floor, bool)
    assert floor_plane_scale(pred, floor, region) == pytest.approx(2.5, rel=1e-6)
    assert np.median(floor / pred) > 2.6  # where the naive median over the region would be
    noisy = pred * np.random.default_rng(0).normal(1.0, 0.005, pred.shape)
    assert floor_plane_scale(noisy, floor, region) == pytest.approx(2.5, rel=0.01)
    with pytest.raises(ValueError):
        floor_plane_scale(pred, floor, np.zeros_like(region))
