"""Superpixel quality measures by hand, and superpixel one-shot's Table I on a smoke model."""

import numpy as np
import pytest

from perception_nodes.eval.superpixel_eval import (
    VARIANTS,
    boundary_recall,
    evaluate_variants,
    undersegmentation_error,
)

GT = np.zeros((4, 8), int)
GT[:, 4:] = 1


def test_superpixels_on_the_boundary_recall_it_and_cut_nothing():
    assert boundary_recall(GT.copy(), GT, tolerance=0) == 1.0
    assert undersegmentation_error(GT.copy(), GT) == 0.0


def test_a_superpixel_across_the_boundary_is_penalised():
    sp = np.zeros((4, 8), int)
    sp[:, 6:] = 1  # superpixel 0 takes 2 columns of the right segment
    assert boundary_recall(sp, GT, tolerance=0) == 0.0
    assert boundary_recall(sp, GT, tolerance=2) == 1.0
    # superpixel 0 (24 px) is cut by both segments, 16 / 8: each counts the smaller part
    assert undersegmentation_error(sp, GT) == pytest.approx((8 + 8) / 32)


def test_table_i_variants_on_a_smoke_model(smoke_models):
    rng = np.random.default_rng(0)
    labels = np.zeros((72, 96), np.uint16)
    labels[10:40, 10:40], labels[30:60, 50:90] = 1, 2
    scenes = [{"rgb": rng.integers(0, 256, (72, 96, 3), dtype=np.uint8), "labels": labels}]
    report = evaluate_variants(scenes, str(smoke_models / "superpixel_segmenter" /
                                           "model.onnx"))
    assert report["scenes"] == 1 and set(report["table_i"]) == set(VARIANTS)
    for row in report["table_i"].values():
        assert 0.0 <= row["map"] <= row["map50"] <= 1.0 and row["fps"] > 0
