"""Latent-MaskRCNN's post-processing on hand-built samples, with hand-computed answers."""

import numpy as np
import pytest

from perception_nodes.core import confidence_masks as cm
from perception_nodes.core.confidence_masks import (
    confidence_masks,
    labels_to_masks,
    mask_iou,
    masks_to_labels,
    union_nms,
)

H, W = 4, 8


def region(c0, c1, r0=0, r1=H):
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


LEFT, RIGHT = region(0, 4), region(4, 8)  # two touching items, 16 px each


def sample(*pairs):
    masks = np.array([m for m, _ in pairs], bool).reshape(-1, H, W)
    return masks, np.array([s for _, s in pairs], np.float32)


def test_a_mask_every_sample_agrees_on_is_returned_with_its_mean_score():
    samples = [sample((LEFT, 0.9)), sample((LEFT, 0.8)), sample((LEFT, 0.7))]
    out = confidence_masks(samples, p=1.0)
    assert len(out.masks) == 1
    np.testing.assert_array_equal(out.masks[0], LEFT)
    assert out.scores[0] == pytest.approx(0.8)
    np.testing.assert_array_equal(out.confidence, np.ones((H, W)))


def test_high_p_splits_what_one_sample_merges():
    merged = LEFT | RIGHT
    samples = [sample((LEFT, 0.9), (RIGHT, 0.9)), sample((LEFT, 0.9), (RIGHT, 0.9)),
               sample((merged, 0.95))]
    out = confidence_masks(samples, p=1.0)
    assert len(out.masks) == 2
    got = sorted(out.masks.tolist())
    assert got == sorted([LEFT.tolist(), RIGHT.tolist()])
    # score = mean(0.9 * 1, 0.9 * 1, 0.95 * 16/32)
    np.testing.assert_allclose(out.scores, (0.9 + 0.9 + 0.475) / 3, rtol=1e-6)
    np.testing.assert_allclose(out.confidence, 1.0)  # every sample has a mask over each px


def test_low_p_lets_the_confident_merge_through():
    merged = LEFT | RIGHT
    samples = [sample((LEFT, 0.5), (RIGHT, 0.5)), sample((LEFT, 0.5), (RIGHT, 0.5)),
               sample((merged, 0.95))]
    out = confidence_masks(samples, p=1 / 3)  # one sample suffices
    assert len(out.masks) == 1
    np.testing.assert_array_equal(out.masks[0], merged)
    assert out.scores[0] == pytest.approx(0.95)
    # per pixel: sample 3's merged mask agrees everywhere, samples 1-2's best match is LEFT
    np.testing.assert_allclose(out.confidence[:, :4], 1.0)
    np.testing.assert_allclose(out.confidence[:, 4:], 1 / 3)


def test_uncertain_extent_shrinks_to_the_agreed_core_and_weak_masks_stop_the_search():
    samples = [sample((region(0, 4), 0.9)), sample((region(0, 5), 0.9)),
               sample((region(1, 4), 0.9)), sample((region(6, 8), 0.12))]
    out = confidence_masks(samples, p=0.75)  # ceil(4 * 0.75) = 3 samples must agree
    assert len(out.masks) == 1
    np.testing.assert_array_equal(out.masks[0], region(1, 4))
    # score = mean(0.9 * 12/16, 0.9 * 12/20, 0.9 * 12/12) -- the best of the candidates
    assert out.scores[0] == pytest.approx(0.9 * (12 / 16 + 12 / 20 + 1) / 3)
    none = confidence_masks([sample((LEFT, 0.09)), sample((LEFT, 0.05))], p=0.5)
    assert len(none.masks) == 0 and none.masks.shape == (0, H, W)


def test_samples_without_masks_are_allowed():
    empty = (np.zeros((0, H, W), bool), np.zeros(0, np.float32))
    out = confidence_masks([empty, sample((LEFT, 0.9))], p=0.5)
    assert len(out.masks) == 1  # one of two samples suffices at p = 0.5
    assert confidence_masks([empty, empty], p=0.5).masks.shape == (0, H, W)


def test_confidence_masks_rejects_bad_input():
    with pytest.raises(ValueError):
        confidence_masks([], p=0.5)
    with pytest.raises(ValueError):
        confidence_masks([sample((LEFT, 0.9))], p=0.0)
    with pytest.raises(ValueError):
        confidence_masks([(LEFT[None], np.array([0.9, 0.8]))], p=0.5)


def test_union_nms_unions_what_it_suppresses_and_keeps_the_rest():
    a, b = region(0, 4), region(0, 5)        # IoU 0.8
    c = region(6, 8)
    out = union_nms(np.array([b, a, c]), np.array([0.7, 0.9, 0.5]), iou_threshold=0.5)
    assert len(out.masks) == 2
    np.testing.assert_array_equal(out.masks[0], a | b)
    np.testing.assert_array_equal(out.masks[1], c)
    np.testing.assert_allclose(out.scores, [0.9, 0.5])
    assert mask_iou(np.array([a, b]))[0, 1] == pytest.approx(0.8)


def test_labels_round_trip_and_overlaps_go_to_the_higher_score():
    labels = masks_to_labels(np.array([region(0, 5), region(4, 8)]), np.array([0.2, 0.9]))
    assert labels.dtype == np.uint16
    assert (labels[:, :4] == 1).all() and (labels[:, 4:] == 2).all()
    np.testing.assert_array_equal(labels_to_masks(labels), [region(0, 4), region(4, 8)])


def test_union_nms_and_labels_of_nothing():
    out = union_nms(np.zeros((0, H, W), bool), np.zeros(0, np.float32))
    assert out.masks.shape == (0, H, W) and out.scores.shape == (0,)
    assert mask_iou(np.zeros((0, H, W), bool)).shape == (0, 0)
    assert masks_to_labels(out.masks, out.scores).max() == 0


def test_resize_prediction_is_nearest_on_blocks():
    from perception_nodes.core.confidence_masks import InstancePrediction, resize_prediction

    grid = np.zeros((1, 2, 3), bool)
    grid[0, 1, 2] = True
    pred = InstancePrediction(grid, np.array([0.5], np.float32), np.eye(2, 3, dtype=np.float32))
    big = resize_prediction(pred, (8, 12))
    assert big.masks.shape == (1, 8, 12) and big.masks[0, 4:, 8:].all()
    assert big.masks[0].sum() == 16 and big.confidence[:4, :4].min() == 1.0


def _random_partition_samples(rng, k=8, h=12, w=16):
    """Samples like a decoder's: each a partition of the image into disjoint masks, some
    merging two neighbouring items, some missing one."""
    base = np.zeros((h, w), int)
    for i, c in enumerate(range(0, w, 4)):
        base[:, c:c + 4] = i + 1
        base[h // 2:, c:c + 4] = i + 5
    samples = []
    for _ in range(k):
        lab = base.copy()
        if rng.uniform() < 0.5:
            a = rng.integers(1, 4)
            lab[lab == a + 1] = a  # a merge
        if rng.uniform() < 0.3:
            lab[lab == rng.integers(1, 9)] = 0  # a miss
        lab = np.roll(lab, rng.integers(-1, 2), axis=1)
        ids = np.unique(lab[lab > 0])
        samples.append((lab[None] == ids[:, None, None], rng.uniform(0.3, 1.0, len(ids))))
    return samples


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [0.5, 0.9, 1.0])
def test_label_image_path_equals_the_mask_path(seed, p, monkeypatch):
    samples = _random_partition_samples(np.random.default_rng(seed))
    fast = confidence_masks(samples, p)
    monkeypatch.setattr(cm, "_sample_labels", lambda *args: None)
    slow = confidence_masks(samples, p)
    assert len(fast.masks) > 0
    np.testing.assert_array_equal(fast.masks, slow.masks)
    np.testing.assert_array_equal(fast.scores, slow.scores)
    np.testing.assert_array_equal(fast.confidence, slow.confidence)


@pytest.mark.parametrize("seed", range(3))
def test_label_images_give_the_same_masks_as_mask_samples(seed):
    samples = _random_partition_samples(np.random.default_rng(seed))
    labels = np.stack([masks_to_labels(m, np.arange(len(m))) for m, _ in samples])
    from_labels = cm.confidence_masks_from_labels(labels, [s for _, s in samples], 0.75)
    from_masks = confidence_masks(samples, 0.75)
    np.testing.assert_array_equal(from_labels.masks, from_masks.masks)
    np.testing.assert_array_equal(from_labels.scores, from_masks.scores)
    np.testing.assert_array_equal(from_labels.confidence, from_masks.confidence)


def test_label_images_outside_their_scores_are_refused():
    with pytest.raises(ValueError, match="0..n_g"):
        cm.confidence_masks_from_labels(np.full((2, 3, 3), 2), [np.ones(1), np.ones(2)], 0.5)


@pytest.mark.parametrize("p", [0.5, 1.0])
def test_samples_that_found_nothing_give_nothing(p):
    out = cm.confidence_masks_from_labels(np.zeros((8, 3, 4), int), [np.zeros(0)] * 8, p)
    assert out.masks.shape == (0, 3, 4) and (out.confidence == 1.0).all()
