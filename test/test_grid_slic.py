"""Grid-preserving SLIC against a per-pixel reference, and the superpixel upsampling."""

import numpy as np
import pytest

from perception_nodes.core.grid_slic import (
    grid_shape,
    grid_slic,
    lab_planes,
    superpixel_targets,
    upsample_grid,
)


def reference_grid_slic(rgb, cell, compactness):
    """SLIC's assignment step written pixel by pixel: every centre within one cell."""
    h, w = rgb.shape[:2]
    gh, gw = grid_shape(h, w, cell)
    lab = lab_planes(rgb).transpose(1, 2, 0).astype(np.float64)
    edge = np.pad(lab, ((0, gh * cell - h), (0, gw * cell - w), (0, 0)), mode="edge")
    centres = np.zeros((gh, gw, 3))
    for gy in range(gh):
        for gx in range(gw):
            centres[gy, gx] = edge[gy * cell:(gy + 1) * cell, gx * cell:(gx + 1) * cell] \
                .reshape(-1, 3).mean(axis=0)
    out = np.zeros((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            best = (np.inf, -1)
            for gy in range(gh):
                for gx in range(gw):
                    cy, cx = gy * cell + (cell - 1) / 2, gx * cell + (cell - 1) / 2
                    if abs(y - cy) > cell or abs(x - cx) > cell:
                        continue
                    d = ((lab[y, x] - centres[gy, gx]) ** 2).sum() + \
                        (compactness / cell) ** 2 * ((y - cy) ** 2 + (x - cx) ** 2)
                    best = min(best, (d, gy * gw + gx))
            out[y, x] = best[1]
    return out


def test_assignments_equal_a_per_pixel_search_on_a_noisy_image():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (14, 18, 3), dtype=np.uint8)
    got = grid_slic(rgb, cell=4, compactness=10.0)
    want = reference_grid_slic(rgb, 4, 10.0)
    assert (got != want).mean() < 0.01  # float32 against float64 near-ties only
    gy, gx = np.divmod(got, 5)
    ys, xs = np.mgrid[0:14, 0:18]
    assert (np.abs(gy - ys // 4) <= 1).all() and (np.abs(gx - xs // 4) <= 1).all()


def test_a_flat_image_gives_the_plain_grid():
    rgb = np.full((16, 24, 3), 90, np.uint8)
    got = grid_slic(rgb, cell=8)
    ys, xs = np.mgrid[0:16, 0:24]
    assert (got == (ys // 8) * 3 + xs // 8).all()


def test_superpixels_follow_an_edge_that_the_grid_cuts():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, 13:] = 255  # an edge 5 px into the second column of 8 px cells
    got = grid_slic(rgb, cell=8, compactness=1.0)
    _, gx = np.divmod(got, 4)
    # Dark pixels of cell 1 within reach of cell 0's centre (x 3.5 + 8) join it.
    assert (gx[:, 8:12] == 0).all()
    assert (gx[:, 13:16] == 2).all()  # and its bright pixels the bright centre of cell 2


def test_partial_border_cells_and_upsampling():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    sp = grid_slic(rgb, cell=8)
    assert sp.shape == (21, 30) and sp.min() >= 0 and sp.max() < 3 * 4
    grid = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert (upsample_grid(grid, sp) == sp).all()
    scores = np.stack([grid, grid], -1).astype(np.float32)
    assert upsample_grid(scores, sp).shape == (21, 30, 2)


def test_targets_take_the_label_at_each_superpixels_centre_of_mass():
    labels = np.zeros((16, 16), np.uint16)
    labels[:8, :8] = 3
    sp = grid_slic(np.full((16, 16, 3), 50, np.uint8), cell=8)
    assert (superpixel_targets(labels, sp, (2, 2)) == [[3, 0], [0, 0]]).all()


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        grid_slic(bad)
