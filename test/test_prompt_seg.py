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
    assert first["args"]["inputs"] == "rgbh" and len(first["args"]["floor_plane"]) == 4
    runner = PromptSegRunner(tmp_path / "a" / "model.onnx", "cpu")
    assert runner.needs_height
    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    height = np.zeros((96, 128), np.float32)
    height[40:60, 90:110], height[0, :] = 0.05, np.nan
    prompts = np.array([[10, 10], [50, 100]])
    with pytest.raises(ValueError, match="height"):
        runner.predict(rgb, prompts)
    prob = runner.predict(rgb, prompts, height)
    assert prob.shape == (2, 96, 128) and ((prob >= 0) & (prob <= 1)).all()
    flat = runner.predict(rgb, prompts, np.zeros_like(height))
    assert not np.allclose(prob, flat)  # the height channel reaches the masks
    assert runner.predict(rgb, np.zeros((0, 2)), height).shape == (0, 96, 128)


def test_height_channel_is_clipped_scaled_and_nan_safe():
    from perception_nodes.core.instance_encoding import preprocess_height, preprocess_rgbh

    height = np.array([[0.0, 0.05], [np.nan, 1.0], [-0.2, 0.1]], np.float32)
    out = preprocess_height(height, (3, 2))
    assert out.shape == (1, 1, 3, 2) and out.dtype == np.float32
    assert np.allclose(out[0, 0], [[0.0, 1.0], [0.0, 5.0], [0.0, 2.0]])
    rgb = np.zeros((3, 2, 3), np.uint8)
    assert preprocess_rgbh(rgb, height, (3, 2)).shape == (1, 4, 3, 2)
    with pytest.raises(ValueError, match="aligned"):
        preprocess_rgbh(rgb, height[:2], (3, 2))


def test_training_height_is_flipped_with_the_image(tmp_path):
    from perception_nodes.learning.data import load_training_scene_with_height

    k = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])
    depth = np.full((24, 32), 1.0, np.float32)
    depth[2:8, 3:9] = 0.9  # an object 10 cm tall in the top-left corner
    labels = np.zeros((24, 32), np.uint16)
    labels[2:8, 3:9] = 1
    rgb = np.zeros((24, 32, 3), np.uint8)
    np.savez(tmp_path / "scene.npz", rgb=rgb, depth=depth, labels=labels, camera_k=k)
    plane = np.array([0.0, 0.0, -1.0, 1.0])  # the floor 1 m ahead, facing the camera
    flips = 0
    for seed in range(8):
        _, lab, height = load_training_scene_with_height(
            tmp_path / "scene.npz", (24, 32), np.random.default_rng(seed), plane)
        assert np.allclose(height[lab == 1], 0.1, atol=1e-5)
        assert np.allclose(height[lab == 0], 0.0, atol=1e-5)
        flips += int(lab[2, 3] == 0)
    assert flips > 0  # some draws flipped, and the height followed
