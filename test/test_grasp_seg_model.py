"""Grasp segmentation model without trained weights, its loss, and a smoke training."""

import numpy as np
import pytest
import torch

from perception_nodes.learning.grasp_seg_model import (
    GatedResidual,
    GraspSegmenter,
    weighted_bce_sum,
)


def test_model_maps_ten_channels_to_two_masks_at_full_resolution():
    torch.manual_seed(0)
    model = GraspSegmenter(width=8).eval()
    with torch.no_grad():
        for x in (torch.randn(2, 10, 48, 64), torch.zeros(1, 10, 32, 32)):
            y = model(x)
            assert y.shape == (x.shape[0], 2, *x.shape[2:]) and torch.isfinite(y).all()
        assert not torch.isfinite(model(torch.full((1, 10, 32, 32), float("nan")))).any()


def test_a_closed_gate_passes_the_input_through():
    block = GatedResidual(4)
    torch.nn.init.constant_(block.c2[1].bias, -1e4)  # sigmoid(-1e4) = 0: nothing added
    torch.nn.init.zeros_(block.c2[1].weight)
    x = torch.randn(1, 4, 8, 8)
    assert torch.allclose(block.eval()(x), x)


def test_six_weightings_by_hand():
    target = torch.zeros(1, 1, 1, 5)
    target[..., 2] = 1.0
    logits = torch.zeros(1, 1, 1, 5)  # every pixel's BCE is log 2
    parts = weighted_bce_sum(logits, target, kernels=(3, 5))
    ln2 = float(np.log(2))
    assert parts["w_mask"].item() == pytest.approx(ln2 / 5)
    assert parts["w_background"].item() == pytest.approx(4 * ln2 / 5)
    assert parts["w_pool3"].item() == pytest.approx(3 * ln2 / 5)  # the mask grown by 1
    assert parts["w_pool5"].item() == pytest.approx(5 * ln2 / 5)
    assert parts["total"].item() == pytest.approx((1 + 4 + 3 + 5) * ln2 / 5)


def test_smoke_training_exports_a_model_onnx_runtime_runs(tmp_path):
    from perception_nodes.inference.grasp_segmenter import GraspSegRunner
    from perception_nodes.learning.grasp_seg_train import main
    from perception_nodes.sim.grasp_episodes import load_episodes, usable_grasps

    summary = main(["--preset", "smoke", "--data", str(tmp_path / "grasps"),
                    "--out", str(tmp_path / "run"), "--width", "8", "--threads", "1"])
    assert summary["steps"] == 3 and summary["onnx_max_abs_diff"] < 1e-3
    episodes = usable_grasps(load_episodes(str(tmp_path / "grasps" / "train")))
    assert episodes and all(e.visible.any() and (e.amodal >= e.visible).all()
                            for e in episodes)
    ep = episodes[0]
    visible, amodal = GraspSegRunner(tmp_path / "run" / "model.onnx", "cpu").predict(
        ep.before, ep.after, ep.grasp_mask)
    assert visible.shape == ep.visible.shape and visible.dtype == np.float32
    assert (visible >= 0).all() and (visible <= 1).all() and amodal.shape == visible.shape
