"""superpixel one-shot's post-processing on hand-built grid outputs with known answers."""

import numpy as np
import pytest

from perception_nodes.core.superpixel_instances import (
    bilinear_label_image,
    cluster_all_to_all,
    cluster_with_centres,
)

D = 4


def grid_outputs(instances, h=6, w=8):
    """``(2 + D, h, w)`` outputs: each instance a (rows, cols, embedding, centre cells)."""
    out = np.zeros((2 + D, h, w), np.float32)
    for rows, cols, emb, centre in instances:
        out[0, rows, cols] = 0.9
        out[2:, rows, cols] = np.asarray(emb, np.float32)[:, None, None]
        for r, c in centre:
            out[1, r, c] = 0.95
    return out


LEFT = (slice(0, 6), slice(0, 4), [1, 0, 0, 0], [(2, 1), (3, 1)])
RIGHT = (slice(0, 6), slice(4, 8), [0, 1, 0, 0], [(3, 6)])


def test_two_touching_items_split_by_their_embeddings():
    inst = cluster_with_centres(grid_outputs([LEFT, RIGHT]))
    assert len(inst.scores) == 2
    assert (inst.labels[:, :4] == inst.labels[0, 0]).all()
    assert (inst.labels[:, 4:] == inst.labels[0, 7]).all()
    assert inst.labels[0, 0] != inst.labels[0, 7] and inst.labels.min() > 0
    np.testing.assert_allclose(inst.scores, 0.95 * 0.9, rtol=1e-6)


def test_duplicate_centres_closer_than_delta_a_are_one():
    second_centre = (slice(0, 6), slice(0, 4), [1.05, 0, 0, 0], [(0, 0)])
    out = grid_outputs([LEFT, RIGHT])
    out[1, 0, 0] = 0.9  # a second blob on the left item, embedding 0.05 away
    out[2:, 0, 0] = np.asarray(second_centre[2], np.float32)
    assert len(cluster_with_centres(out).scores) == 2
    out[2:, 0, 0] = [2.0, 0, 0, 0]  # far in embedding space: a centre of its own
    assert len(cluster_with_centres(out, min_cells=1).scores) == 3


def test_elements_far_from_every_centre_are_rejected():
    out = grid_outputs([LEFT, RIGHT])
    out[2:, 5, 7] = [0, 0, 5, 0]
    inst = cluster_with_centres(out)
    assert inst.labels[5, 7] == 0 and (inst.labels[:5] > 0).all()


def test_no_centre_or_no_item_gives_no_instance():
    out = grid_outputs([LEFT])
    out[1] = 0.1
    assert len(cluster_with_centres(out).scores) == 0
    assert len(cluster_all_to_all(np.zeros((2 + D, 4, 4), np.float32)).scores) == 0


def test_all_to_all_links_by_embedding_without_centres():
    out = grid_outputs([LEFT, RIGHT])
    out[1] = 0.0
    inst = cluster_all_to_all(out)
    assert len(inst.scores) == 2 and inst.labels[0, 0] != inst.labels[0, 7]


def test_bilinear_label_image_keeps_blocks():
    grid = np.array([[0, 1], [2, 2]], np.uint16)
    up = bilinear_label_image(grid, (8, 8))
    assert up[0, 0] == 0 and up[0, 7] == 1 and up[7, 0] == 2 and up.dtype == np.uint16


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4)), np.zeros((4, 4))])
def test_malformed_outputs_are_refused(bad):
    with pytest.raises(ValueError):
        cluster_with_centres(bad)


def test_instances_below_a_score_are_dropped_and_the_rest_renumbered():
    inst = cluster_with_centres(grid_outputs([LEFT, RIGHT]))
    inst.scores[0] = 0.1
    kept = inst.above(0.5)
    assert len(kept.scores) == 1 and set(np.unique(kept.labels)) == {0, 1}
    assert (kept.labels == 1).sum() == (inst.labels == 2).sum()
