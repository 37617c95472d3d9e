"""Anomaly instances core (seed 003): point sampling, NMS, scoring, ensemble, baselines and
pixel metrics, exact on tiny seeded arrays."""

import numpy as np
import pytest

from perception_nodes.core.anomaly import (
    anomalous_points,
    connected_components,
    farthest_point_sampling,
    grid_points,
    kmeans_points,
    mask_nms,
    mask_scores,
    oracle_points,
    random_points,
    refine_pixel_scores,
    sample_points,
)
from perception_nodes.core.instance_metrics import fpr_at_tpr, pixel_average_precision


def _two_blobs():
    score = np.zeros((20, 30), np.float32)
    score[2:6, 2:6] = 0.9  # a small anomaly
    score[10:18, 15:28] = 0.8  # a big one
    score[0, 29] = np.nan
    return score


def test_points_come_from_hot_pixels_outside_the_ignore_region():
    score = _two_blobs()
    ignore = np.zeros_like(score, bool)
    ignore[:, :10] = True
    pts = anomalous_points(score, 0.5, ignore)
    assert len(pts) == 8 * 13 and (pts[:, 1] >= 15).all()
    assert len(anomalous_points(score, 0.5)) == 16 + 8 * 13


def test_fps_reaches_both_blobs_and_spreads_out():
    pts = anomalous_points(_two_blobs(), 0.5)
    rng = np.random.default_rng(0)
    two = farthest_point_sampling(pts, 2, rng)
    assert len(two) == 2 and (two[:, 0] < 6).sum() == 1  # one point on each blob
    many = farthest_point_sampling(pts, 500, rng)
    assert len(many) == len(pts) and len(np.unique(many, axis=0)) == len(pts)
    same = np.repeat([[3, 4]], 5, axis=0)
    assert len(farthest_point_sampling(same, 3, rng)) == 1  # no duplicate prompts
    assert farthest_point_sampling(pts[:0], 5, rng).shape == (0, 2)


def test_kmeans_snaps_to_anomalous_pixels_and_random_is_seeded():
    pts = anomalous_points(_two_blobs(), 0.5)
    centres = kmeans_points(pts, 2, np.random.default_rng(1))
    as_set = {tuple(p) for p in pts}
    assert all(tuple(c) in as_set for c in centres)
    assert sorted((c[0] < 6) for c in centres) == [False, True]
    a = random_points(pts, 7, np.random.default_rng(3))
    b = random_points(pts, 7, np.random.default_rng(3))
    assert np.array_equal(a, b) and len(np.unique(a, axis=0)) == 7
    for method in ("fps", "kmeans", "random"):
        assert len(sample_points(pts, 3, method, np.random.default_rng(0))) <= 3
    with pytest.raises(ValueError):
        sample_points(pts, 3, "dense", np.random.default_rng(0))


def test_grid_and_oracle_points():
    ignore = np.zeros((20, 30), bool)
    ignore[:10] = True
    grid = grid_points((20, 30), 4, ignore)
    assert len(grid) == 8 and (grid[:, 0] >= 10).all()
    labels = np.zeros((20, 30), np.uint16)
    labels[2:9, 2:9], labels[10:19, 10:29] = 1, 2
    oracle = oracle_points(labels)
    assert labels[oracle[:, 0], oracle[:, 1]].tolist() == [1, 2]
    assert tuple(oracle[0]) == (5, 5)


def test_mask_scores_nms_and_the_pixel_ensemble():
    score = _two_blobs()
    masks = np.zeros((4, 20, 30), bool)
    masks[0, 2:6, 2:6] = True  # the small anomaly
    masks[1, 2:6, 2:7] = True  # a near duplicate, one column of background
    masks[2, 10:18, 15:28] = True  # the big one
    s = mask_scores(masks, score)
    assert s[0] == pytest.approx(0.9) and s[1] == pytest.approx(0.9 * 16 / 20)
    assert s[2] == pytest.approx(0.8) and s[3] == 0.0  # empty mask
    keep = mask_nms(masks, s, 0.5)
    assert keep.tolist() == [0, 2]
    refined = refine_pixel_scores(score, masks[keep], s[keep])
    assert refined[3, 3] == pytest.approx(1.8) and refined[12, 20] == pytest.approx(1.6)
    assert refined[19, 0] == 0.0 and np.isnan(refined[0, 29])


def test_connected_components_merge_touching_anomalies():
    score = np.zeros((20, 30), np.float32)
    score[5:10, 5:10] = 0.9
    score[5:10, 10:15] = 0.7  # a second object touching the first: one blob
    score[15:17, 25:27] = 0.9  # 4 px: below the minimum area
    masks, s = connected_components(score, 0.5, min_area=10)
    assert len(masks) == 1 and masks[0].sum() == 50 and s[0] == pytest.approx(0.8)


def test_pixel_ap_and_fpr95_match_hand_computed_values():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    positive = np.array([1, 0, 1, 0, 0, 1], bool)
    # precision at each positive: 1/1, 2/3, 3/6
    assert pixel_average_precision(scores, positive) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert pixel_average_precision(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    # tied scores are one threshold
    assert pixel_average_precision(np.ones(4), np.array([1, 0, 0, 1], bool)) == 0.5
    assert fpr_at_tpr(scores, positive) == pytest.approx(1.0)  # all 3 needed: 3 of 3 negatives
    assert fpr_at_tpr(scores, positive, 0.6) == pytest.approx(1 / 3)
    assert np.isnan(fpr_at_tpr(scores, np.zeros(6, bool)))
    assert np.isnan(pixel_average_precision(scores, np.zeros(6, bool)))
