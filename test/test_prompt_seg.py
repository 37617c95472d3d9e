"""The point-prompted mask model (anomaly issue): shapes without weights, prompt sampling,
grid targets, a seeded smoke training with its ONNX check, and the ONNX runner."""

import numpy as np
import pytest
import torch

from perception_nodes.learning.prompt_seg_model import PromptSegmenter, prompt_mask_loss
from perception_nodes.learning.prompt_seg_train import grid_targets, main, sample_prompts


def test_shapes_and_prompt_dependence_on_random_empty_and_nan_inputs():
    torch.manual_seed(0)
    model = PromptSegmenter().eval()
    points = torch.tensor([[[8.0, 8.0], [40.0, 56.0], [20.0, 30.0]]])
    with torch.no_grad():
        out = model(torch.randn(1, 3, 48, 64), points)
        assert out.shape == (1, 3, 12, 16) and torch.isfinite(out).all()
        assert not torch.allclose(out[0, 0], out[0, 1])  # the prompt matters
        assert model(torch.zeros(1, 3, 48, 64), points[:, :0]).shape == (1, 0, 12, 16)
        nan = model(torch.full((1, 3, 48, 64), float("nan")), points)
        assert nan.shape == (1, 3, 12, 16)  # NaN in, no crash; callers validate images


def test_loss_prefers_the_target_and_ignores_dice_on_empty_targets():
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, :2, :2] = 1.0
    good = (target * 2 - 1) * 6
    assert prompt_mask_loss(good, target)["total"] < prompt_mask_loss(-good, target)["total"]
    empty = prompt_mask_loss(torch.full((1, 1, 4, 4), -6.0), torch.zeros(1, 1, 4, 4))
    assert empty["dice"] == 0.0 and empty["bce"] < 0.01


def test_prompts_fall_inside_their_objects_and_the_last_on_none():
    labels = np.zeros((40, 40), np.uint16)
    labels[5:20, 5:20], labels[25:38, 22:38] = 3, 7
    labels[0, 39] = 9  # a 1-px speck: never prompted
    points, targets = sample_prompts(labels, 6, np.random.default_rng(0))
    assert points.shape == (6, 2) and targets[-1] == 0 and set(targets[:-1]) <= {3, 7}
    for (r, c), t in zip(points.astype(int), targets, strict=True):
        assert labels[r, c] == t
    grid = grid_targets(labels, np.array([3, 0]))
    assert grid.shape == (2, 10, 10) and grid[1].max() == 0.0
    assert grid[0][2, 2] == 1.0 and grid[0][1, 1] == pytest.approx(0.75 * 0.75)
    _, only_none = sample_prompts(np.zeros((8, 8), np.uint16), 3, np.random.default_rng(0))
    assert only_none.tolist() == [0, 0, 0]


def test_smoke_training_exports_a_checked_onnx_and_the_runner_reads_it(tmp_path):
    from perception_nodes.inference.prompt_segmenter import PromptSegRunner

    args = ["--preset", "smoke", "--data", str(tmp_path / "data"), "--threads", "1"]
    first = main(args + ["--out", str(tmp_path / "a")])
    second = main(args + ["--out", str(tmp_path / "b")])
    assert first["log"][-1]["total"] == pytest.approx(second["log"][-1]["total"], rel=1e-5)
    assert first["onnx_max_abs_diff"] < 1e-3 and first["args"]["splits"] == [
        "train", "anomaly_train"]
    runner = PromptSegRunner(tmp_path / "a" / "model.onnx", "cpu")
    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    prob = runner.predict(rgb, np.array([[10, 10], [50, 100]]))
    assert prob.shape == (2, 96, 128) and ((prob >= 0) & (prob <= 1)).all()
    assert runner.predict(rgb, np.zeros((0, 2))).shape == (0, 96, 128)
