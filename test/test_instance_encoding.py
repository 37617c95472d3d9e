"""The shared pre/post-processing path: targets from labels, instances from outputs."""

import numpy as np
import pytest

from perception_nodes.core.confidence_masks import labels_to_masks
from perception_nodes.core.instance_encoding import (
    decode_instances,
    encode_instances,
    grid_labels,
    instance_centres,
    preprocess,
)
from perception_nodes.core.instance_metrics import overlaps


def _labels():
    labels = np.zeros((48, 64), np.uint16)
    labels[4:28, 4:28] = 1      # a square
    labels[4:28, 28:52] = 2     # touching it, same size
    labels[32:44, 8:56] = 3     # a long flat item
    return labels


def test_preprocess_normalises_and_resizes():
    rgb = np.full((48, 64, 3), 255, np.uint8)
    x = preprocess(rgb, (48, 64))
    assert x.shape == (1, 3, 48, 64) and x.dtype == np.float32
    assert x.max() == pytest.approx(2.0)
    assert preprocess(rgb, (24, 32)).shape == (1, 3, 24, 32)
    with pytest.raises(ValueError):
        preprocess(rgb.astype(np.float32), (48, 64))


def test_targets_point_every_cell_to_its_most_interior_cell():
    t = encode_instances(_labels(), stride=4)
    assert t.fg.shape == (12, 16) and t.offsets.shape == (2, 12, 16)
    grid = grid_labels(_labels(), 4)
    centres = instance_centres(grid)
    for label, (r, c) in centres.items():
        assert grid[r, c] == label and t.heatmap[r, c] == pytest.approx(1.0)
        rows, cols = np.nonzero(grid == label)
        np.testing.assert_allclose(rows + t.offsets[0][rows, cols], r)
        np.testing.assert_allclose(cols + t.offsets[1][rows, cols], c)
    assert (t.offsets[:, grid == 0] == 0).all()
    np.testing.assert_array_equal(t.fg > 0, grid > 0)


def test_decoding_perfect_outputs_recovers_the_instances():
    labels = _labels()
    t = encode_instances(labels, stride=4)
    logit = lambda p: np.log(np.clip(p, 1e-4, 1 - 1e-4) / (1 - np.clip(p, 1e-4, 1 - 1e-4)))  # noqa: E731
    pred = decode_instances(logit(t.fg), logit(t.heatmap), t.offsets, labels.shape)
    assert len(pred.masks) == 3
    iou = overlaps(pred.masks, labels_to_masks(labels))["iou"]
    assert (iou.max(axis=1) > 0.85).all()  # grid-resolution boundaries
    assert (pred.scores > 0.9).all()


def test_decoding_empty_and_background_outputs_gives_no_instances():
    h, w = 12, 16
    zeros = np.zeros((h, w), np.float32)
    out = decode_instances(zeros - 10, zeros - 10, np.zeros((2, h, w), np.float32), (48, 64))
    assert out.masks.shape == (0, 48, 64) and out.scores.shape == (0,)
