"""Simulated double-pick rate (Latent-MaskRCNN Sec. V-D) on hand-built masks."""

import numpy as np
import pytest

from perception_nodes.core.pick_metrics import PickCircleCounts, count_pick_circles, disk_offsets

H, W = 20, 40
GT = np.zeros((H, W), np.uint16)
GT[:, :20], GT[:, 20:] = 1, 2  # two touching items


def test_disk_offsets():
    assert len(disk_offsets(0)) == 1
    assert len(disk_offsets(1)) == 5
    assert len(disk_offsets(2)) == 13


def test_correct_masks_never_double_pick():
    pred = np.array([GT == 1, GT == 2])
    c = count_pick_circles(pred, GT, 3, 5000, np.random.default_rng(0))
    assert c.inside_one_prediction > 0 and c.double_picks == 0
    assert c.pickable_area_fraction == 1.0


def test_a_merged_mask_double_picks_exactly_on_the_seam():
    merged = np.array([GT > 0])
    r = 3
    c = count_pick_circles(merged, GT, r, 20000, np.random.default_rng(1))
    # a centre fits when its distance to outside exceeds r: cols 3..36 (34 columns); a
    # circle straddles the seam (between cols 19 and 20) when its centre is in cols 17..22
    assert c.double_pick_rate == pytest.approx(6 / 34, abs=0.01)
    shrunk = np.zeros_like(merged)
    shrunk[0, 5:15, 5:15] = True
    c2 = count_pick_circles(shrunk, GT, r, 5000, np.random.default_rng(1))
    assert c2.double_picks == 0
    assert c2.pickable_area_fraction == pytest.approx(100 / 800)


def test_circles_inside_two_overlapping_predictions_are_not_counted_and_counts_add():
    pred = np.array([GT > 0, GT > 0])
    c = count_pick_circles(pred, GT, 2, 1000, np.random.default_rng(2))
    assert c.inside_one_prediction == 0 and np.isnan(c.double_pick_rate)
    total = c + PickCircleCounts(10, 1, 5, 10)
    assert total.astuple() == (10, 1, 800 + 5, 800 + 10)
    assert count_pick_circles(np.zeros((0, H, W), bool), GT, 2, 10,
                              np.random.default_rng(0)).inside_one_prediction == 0
