"""Metrics of Latent-MaskRCNN on hand-built predictions with hand-computed values."""

import numpy as np
import pytest

from perception_nodes.core.instance_metrics import (
    InstanceEvaluator,
    average_precision,
    match,
    max_recall_at_precision,
    overlaps,
)

H, W = 4, 8


def region(c0, c1):
    m = np.zeros((H, W), bool)
    m[:, c0:c1] = True
    return m


GT = np.array([region(0, 4), region(4, 8)])


def test_overlap_definitions():
    ov = overlaps(np.array([region(0, 8)]), GT)
    np.testing.assert_allclose(ov["iou"], [[0.5, 0.5]])
    np.testing.assert_allclose(ov["iop"], [[0.5, 0.5]])
    np.testing.assert_allclose(ov["iog"], [[1.0, 1.0]])


def test_greedy_matching_lets_each_ground_truth_match_once():
    overlap = np.array([[0.9, 0.0], [0.8, 0.6]])
    np.testing.assert_array_equal(match(np.array([0.9, 0.8]), overlap, 0.5), [True, True])
    np.testing.assert_array_equal(match(np.array([0.9, 0.8]), overlap, 0.7), [True, False])


def test_average_precision_and_max_recall_by_hand():
    scores, tp = np.array([0.9, 0.8, 0.7]), np.array([True, False, True])
    # recall 0.5 at precision 1, recall 1.0 at precision 2/3; 101-point interpolation
    assert average_precision(scores, tp, 2) == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert max_recall_at_precision(scores, tp, 2, 0.9) == pytest.approx(0.5)
    assert max_recall_at_precision(scores, tp, 2, 0.6) == pytest.approx(1.0)
    assert max_recall_at_precision(scores, np.zeros(3, bool), 2, 0.5) == 0.0


def test_perfect_merged_and_split_predictions():
    perfect = InstanceEvaluator()
    perfect.add(GT, np.array([0.9, 0.8]), GT)
    assert perfect.mean_ap() == pytest.approx(1.0)
    assert perfect.mr_at_hp() == pytest.approx(1.0)
    assert perfect.ar_iog() == pytest.approx(1.0)

    merged = InstanceEvaluator()  # one mask over both items: the double-pick error
    merged.add(np.array([region(0, 8)]), np.array([0.9]), GT)
    assert merged.mr_at_hp() == 0.0            # IoP 0.5: never precise enough
    assert merged.ar_iog() == pytest.approx(0.5)  # covers both, but matches one
    assert merged.ap_at(0.5) == pytest.approx(51 / 101)
    assert merged.mean_ap() == pytest.approx(51 / 101 / 10)

    split = InstanceEvaluator()  # two halves of the left item, nothing on the right
    split.add(np.array([region(0, 2), region(2, 4)]), np.array([0.9, 0.8]), GT)
    assert split.mr_at_hp() == pytest.approx(0.5)  # IoP 1: precise, half the items
    # IoG 0.5: a match at the 0.5 threshold only, recall 1/2 there, 0 above
    assert split.ar_iog() == pytest.approx(0.5 / 10)


def test_roc_auc_by_hand():
    from perception_nodes.core.instance_metrics import best_iou, roc_auc

    assert roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5], [True, False, False]) == 0.5
    assert roc_auc([0.9, 0.4, 0.6], [True, True, False]) == pytest.approx(0.5)
    assert np.isnan(roc_auc([0.9], [True]))
    np.testing.assert_allclose(best_iou(np.array([region(0, 8), region(0, 4)]), GT),
                               [0.5, 1.0])
