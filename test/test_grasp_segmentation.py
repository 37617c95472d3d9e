"""Grasp segmentation: subtraction baselines, filters, metrics and windows on tiny arrays."""

import numpy as np
import pytest

from perception_nodes.core.grasp_segmentation import (
    binary_entropy,
    contour_filter,
    grasp_input,
    grasp_window,
    paste_window,
    prediction_filter,
    score_masks,
    subtraction_mask,
)


def _pair():
    before = np.full((40, 40, 3), 100, np.uint8)
    before[10:20, 10:20] = 200  # the item
    after = np.full((40, 40, 3), 100, np.uint8)
    return before, after


@pytest.mark.parametrize("method", ["subtract", "mog", "mog2", "lsbp"])
def test_subtraction_finds_the_item_that_left(method):
    before, after = _pair()
    mask = subtraction_mask(before, after, method)
    assert mask.dtype == bool and mask[12:18, 12:18].all() and not mask[30:, 30:].any()


def test_subtraction_of_identical_frames_is_empty_and_bad_methods_fail():
    before, _ = _pair()
    assert not subtraction_mask(before, before).any()
    with pytest.raises(ValueError):
        subtraction_mask(before, before, "nope")


def test_contour_filter_keeps_one_or_two_big_blobs():
    mask = np.zeros((40, 40), bool)
    assert not contour_filter(mask, 10)
    mask[2:8, 2:8] = True
    assert contour_filter(mask, 10)
    mask[20:26, 20:26] = True
    assert contour_filter(mask, 10)
    mask[30:36, 2:8] = True
    assert not contour_filter(mask, 10)  # three contours of 25 px
    assert not contour_filter(mask, 100)  # no blob big enough counts as nothing found


def test_prediction_filter_checks_occlusion_entropy_and_contours():
    visible = np.zeros((40, 40), np.float32)
    visible[5:25, 5:25] = 0.999
    assert prediction_filter(visible, visible, min_area_px=50)
    amodal = visible.copy()
    amodal[25:35, 5:25] = 0.999  # half again hidden: occluded
    assert not prediction_filter(visible, amodal, min_area_px=50)
    unsure = np.where(visible > 0, 0.6, 0).astype(np.float32)
    assert not prediction_filter(unsure, unsure, min_area_px=50)  # entropy 0.67 nats
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(np.log(2))
    assert not prediction_filter(np.zeros((4, 4)), np.zeros((4, 4)))


def test_scores_follow_table_one_definitions():
    truth = np.zeros((10, 10), bool)
    truth[:, :5] = True  # 50 px
    half = np.zeros((10, 10), bool)
    half[:, :5][:5] = True  # 25 px, all right
    wide = np.ones((10, 10), bool)  # 100 px, 50 wrong
    s = score_masks([half, wide, np.zeros((10, 10), bool)], [truth] * 3, [True, True, True])
    assert s.miou == pytest.approx(50.0) and s.error == pytest.approx(75.0)
    assert s.recall == pytest.approx(200 / 3) and s.kept == 2  # the empty one counts filtered
    assert score_masks([half], [truth], [False]).kept == 0


def test_window_and_input_layout():
    grasp = np.zeros((120, 160), np.uint8)
    grasp[2:6, 150:155] = 1  # near a corner: the window stays inside
    top, left = grasp_window(grasp, 112)
    assert (top, left) == (0, 48)
    window = np.ones((2, 112, 112), np.float32)
    full = paste_window(window, (top, left), (120, 160))
    assert full.shape == (2, 120, 160) and full.sum() == 2 * 112 * 112 and full[0, 0, 47] == 0
    before = np.full((4, 4, 3), 255, np.uint8)
    x = grasp_input(before, np.zeros_like(before), np.ones((4, 4)))
    assert x.shape == (10, 4, 4) and x.dtype == np.float32
    assert x[:3].max() == 1 and x[3:6].max() == 0 and x[6:9].min() == 1 and x[9].min() == 1
    with pytest.raises(ValueError):
        grasp_window(np.zeros((50, 50)), 112)


def test_entropy_threshold_scales_with_resolution():
    from perception_nodes.core.grasp_segmentation import scaled_entropy_threshold

    assert scaled_entropy_threshold((640, 960)) == pytest.approx(0.1)
    assert scaled_entropy_threshold((240, 320)) == pytest.approx(0.1 * np.sqrt(8))
