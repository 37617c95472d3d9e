"""Anomaly instances core (UGainS): point sampling, NMS, scoring, ensemble, baselines and
pixel metrics, exact on tiny seeded arrays."""

import numpy as np
import pytest

from perception_nodes.core.anomaly import (
    SuperpixelSnap,
    anomalous_points,
    connected_components,
    farthest_point_sampling,
    grid_points,
    instance_scores,
    kmeans_points,
    mask_confidence,
    mask_nms,
    mask_scores,
    oracle_points,
    random_points,
    recentre_points,
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


def test_floor_plane_fit_and_heights_above_it():
    from perception_nodes.core.anomaly import occupancy
    from perception_nodes.core.camera_model import PinholeIntrinsics
    from perception_nodes.core.floor_plane import fit_floor_plane, height_above_plane

    intr = PinholeIntrinsics.from_fov(32, 24, 45.0)
    depth = np.full((24, 32), 0.9, np.float32)  # a floor 0.9 m straight below
    plane = fit_floor_plane(intr.depth_to_points(depth).reshape(-1, 3))
    assert np.allclose(plane, [0, 0, -1, 0.9], atol=1e-6)  # normal towards the camera
    depth[5:10, 5:10] = 0.85  # a 5 cm box
    depth[0, 0] = np.nan
    height = height_above_plane(depth, intr, plane)
    assert height[7, 7] == pytest.approx(0.05, abs=1e-6) and abs(height[20, 20]) < 1e-6
    assert np.isnan(height[0, 0])
    occ = occupancy(height)
    assert occ[7, 7] == 1.0 and occ[20, 20] == 0.0 and occ[0, 0] == 0.0
    with pytest.raises(ValueError):
        fit_floor_plane(np.full((5, 3), np.nan))


def test_claim_averages_hypotheses_and_the_score_is_occupied_and_unclaimed():
    from perception_nodes.core.anomaly import anomaly_score, known_item_claim

    fg = np.array([[[0.9, 0.8, 0.1]], [[0.9, 0.0, 0.1]]], np.float32)  # 2 hypotheses, 1x3
    labels = np.array([[[1, 2, 0]], [[1, 0, 0]]])
    claim = known_item_claim(fg, labels, [np.array([1.0, 0.5]), np.array([0.5])])
    assert claim[0].tolist() == pytest.approx([(0.9 + 0.45) / 2, 0.2, 0.0])
    occupied = np.array([[1.0, 1.0, 0.0]], np.float32)
    ignore = np.array([[False, False, True]])
    score = anomaly_score(claim, occupied, ignore)
    assert score[0, :2].tolist() == pytest.approx([1 - 0.675, 0.8]) and np.isnan(score[0, 2])


def test_anomaly_instances_sample_segment_score_and_suppress():
    from perception_nodes.core.anomaly import AnomalyParams, anomaly_instances

    score = _two_blobs()
    blobs = np.zeros((20, 30), np.uint16)
    blobs[2:6, 2:6], blobs[10:18, 15:28] = 1, 2

    def segment(points):  # an oracle prompt segmenter: the blob under each point
        return np.stack([(blobs == blobs[r, c]) & (blobs > 0) for r, c in points]
                        ).astype(np.float32)

    inst = anomaly_instances(score, segment, AnomalyParams(num_points=20),
                             np.random.default_rng(0))
    assert len(inst.points) == 20 and len(inst.masks) == 2  # NMS leaves one per blob
    assert inst.scores.tolist() == pytest.approx([0.9, 0.8])
    assert inst.refined[3, 3] == pytest.approx(1.8)
    no_nms = anomaly_instances(score, segment, AnomalyParams(num_points=20, nms=False),
                               np.random.default_rng(0))
    assert len(no_nms.masks) == 20
    none = anomaly_instances(np.zeros((20, 30), np.float32), segment, AnomalyParams(),
                             np.random.default_rng(0))
    assert none.masks.shape == (0, 20, 30) and not none.refined.any()


def test_confidence_prefers_the_whole_mask_over_the_hot_part_of_an_object():
    score = np.zeros((10, 10), np.float32)
    score[2:8, 2:8] = 0.4
    score[2:4, 2:8] = 0.9  # the score is hottest on one side of the object
    whole, part = np.zeros((2, 10, 10), bool)
    whole[2:8, 2:8], part[2:4, 2:8] = True, True
    probs = np.zeros((2, 10, 10), np.float32)
    probs[0][whole], probs[1][part] = 0.9, 0.45
    masks = np.stack([whole, part])
    assert mask_confidence(probs, masks).tolist() == pytest.approx([0.9, 0.45])
    by_mean = instance_scores(masks, probs, score, with_confidence=False)
    assert by_mean[1] > by_mean[0]  # the mean alone keeps the partial mask
    both = instance_scores(masks, probs, score)
    assert both.tolist() == pytest.approx([0.9 * (12 * 0.9 + 24 * 0.4) / 36, 0.45 * 0.9])
    assert both[0] > both[1]
    assert mask_confidence(probs[:0], masks[:0]).shape == (0,)
    assert mask_confidence(probs, np.zeros_like(masks)).tolist() == [0.0, 0.0]


def test_recentring_moves_an_edge_prompt_to_the_centre_and_segments_again():
    from perception_nodes.core.anomaly import AnomalyParams, anomaly_instances

    obj = np.zeros((20, 20), bool)
    obj[4:15, 4:15] = True  # centre (9, 9)
    masks = np.stack([obj, np.zeros_like(obj)])
    assert recentre_points(masks, np.array([[4, 4], [0, 19]])).tolist() == [[9, 9], [0, 19]]
    calls = []

    def segment(points):  # a model that only segments the whole object from near its centre
        calls.append(np.asarray(points).tolist())
        out = np.zeros((len(points), 20, 20), np.float32)
        for i, (r, c) in enumerate(points):
            if obj[r, c] and max(abs(r - 9), abs(c - 9)) <= 3:
                out[i][obj] = 0.9
            elif obj[r, c]:
                out[i][4:10, 4:15] = 0.9  # from the edge: the half of the object it is on
        return out

    score = np.where(obj, 0.8, 0.0).astype(np.float32)
    edge = np.array([[4, 10]])
    once = anomaly_instances(score, segment, AnomalyParams(), np.random.default_rng(0),
                             points=edge)
    assert calls[0] == [[4, 10]] and len(calls) == 2
    assert max(abs(calls[1][0][0] - 9), abs(calls[1][0][1] - 9)) <= 3  # the half's centre
    assert once.points.tolist() == calls[1] and once.masks[0].sum() == obj.sum()
    calls.clear()
    never = anomaly_instances(score, segment, AnomalyParams(recentre=0),
                              np.random.default_rng(0), points=edge)
    assert calls == [[[4, 10]]] and never.masks[0].sum() == 6 * 11


def test_prompt_cache_decodes_each_point_once():
    from perception_nodes.eval.anomaly_eval import PromptCache

    asked = []

    def segment(points):
        asked.append(len(points))
        return np.stack([np.full((3, 4), r * 10 + c, np.float32) for r, c in points])

    cache = PromptCache(segment, (3, 4))
    first = cache(np.array([[0, 1], [2, 3], [0, 1]]))
    again = cache(np.array([[2, 3], [1, 1]]))
    assert asked == [2, 1] and first[:, 0, 0].tolist() == [1, 23, 1]
    assert again[:, 0, 0].tolist() == [23, 11] and cache(np.zeros((0, 2))).shape == (0, 3, 4)


def test_snapping_averages_the_probability_over_each_superpixel():
    superpixels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
    probs = np.zeros((2, 3, 4), np.float32)
    probs[0, 0, 0] = 0.8  # one hot pixel of superpixel 0
    probs[1, :2, 2:] = 0.6
    probs[1, 2, :] = [1.0, 0.0, 1.0, 0.0]
    snap = SuperpixelSnap(superpixels)
    snapped = snap(probs)
    assert snapped.shape == (2, 3, 4) and snapped.dtype == np.float32
    assert np.allclose(snapped[0], [[0.2, 0.2, 0, 0], [0.2, 0.2, 0, 0], [0, 0, 0, 0]])
    assert np.allclose(snapped[1], [[0, 0, 0.6, 0.6], [0, 0, 0.6, 0.6], [0.5] * 4])
    assert snap(probs[:0]).shape == (0, 3, 4)
    assert np.array_equal(snap(probs), snapped)  # built once, applied to every batch


def test_region_growing_stays_on_the_prompted_object():
    from perception_nodes.core.region_grow import grow_regions

    rgb = np.full((48, 64, 3), (120, 120, 120), np.uint8)
    rgb[8:32, 8:32] = (200, 30, 30)  # a red object
    rgb[8:32, 32:56] = (30, 30, 200)  # a blue one touching it
    height = np.zeros((48, 64), np.float32)
    height[8:32, 8:56] = 0.04
    masks = grow_regions(rgb, np.array([[20, 20], [20, 44], [40, 5]]), height)
    red = np.zeros((48, 64), bool)
    red[8:32, 8:32] = True
    iou = (masks[0] & red).sum() / (masks[0] | red).sum()
    assert iou > 0.8 and not (masks[0] & masks[1]).any()
    assert not masks[2][8:32, 8:56].any()  # a floor prompt does not climb the objects


def test_empty_inputs_give_empty_outputs():
    masks, s = connected_components(np.zeros((8, 8), np.float32), 0.5)
    assert masks.shape == (0, 8, 8) and s.shape == (0,)
    assert mask_scores(np.zeros((0, 8, 8), bool), np.zeros((8, 8))).shape == (0,)
    assert mask_nms(np.zeros((0, 8, 8), bool), np.zeros(0)).shape == (0,)
    nan = np.full((8, 8), np.nan, np.float32)
    assert anomalous_points(nan, 0.5).shape == (0, 2)


def test_eval_rows_pool_pixels_and_instances_and_count_point_hits():
    from perception_nodes.eval.anomaly_eval import POINT_COUNTS, Row, point_hits, tables

    gt_labels = np.zeros((8, 8), np.uint16)
    gt_labels[0:4, 0:4] = 5
    positive, valid = gt_labels > 0, np.ones((8, 8), bool)
    valid[7] = False
    row = Row()
    perfect = positive.astype(np.float32)
    row.add(perfect, positive, valid, positive[None], np.array([0.9]), positive[None])
    m = row.metrics()
    assert m["pap"] == 100.0 and m["fpr95"] == 0.0 and m["iap"] == 100.0 and m["iap50"] == 100.0
    pixels_only = Row()
    pixels_only.add(np.zeros((8, 8)), positive, valid)
    assert set(pixels_only.metrics()) == {"pap", "fpr95"}
    on, total, hit = point_hits(np.array([[1, 1], [2, 3], [6, 6]]), gt_labels)
    assert (on, total, hit) == (2, 3, {5})
    assert point_hits(np.zeros((0, 2), np.int64), gt_labels) == (0, 0, set())
    names = ["Pixel score", "sampler random", "sampler kmeans"] + [
        f"points {n}" for n in POINT_COUNTS]
    report = {"rows": {n: m for n in names},
              "points": {k: {"precision": 50.0, "recall": 75.0}
                         for k in ("random", "kmeans", "fps")}}
    md = tables(report)
    assert "| Pixel score | 100.0 | 0.0 | 100.0 | 100.0 |" in md
    assert "| fps | 100.0 | 0.0 | 100.0 | 100.0 | 50.0 | 75.0 |" in md
