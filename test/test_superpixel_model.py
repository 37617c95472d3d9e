"""superpixel one-shot's network and losses on tiny tensors, and the exported model."""

import math

import numpy as np
import pytest
import torch

from perception_nodes.inference.superpixel import SuperpixelRunner, superpixel_cell
from perception_nodes.learning.superpixel_model import (
    SuperpixelSegmenter,
    centre_focal_loss,
    embedding_loss,
    semantic_loss,
)
from perception_nodes.learning.superpixel_train import grid_targets


def test_shapes_and_centre_bias_prior():
    model = SuperpixelSegmenter(width=16).eval()
    for image in (torch.zeros(1, 3, 32, 48), torch.randn(2, 3, 32, 48)):
        out = model(image)
        assert out["semantic"].shape[1:] == (2, 8, 12)
        assert out["centre"].shape[1:] == (1, 8, 12)
        assert out["embedding"].shape[1:] == (32, 8, 12)
    assert model.centre[-1].bias.item() == pytest.approx(-math.log(9.0))


def test_semantic_weights_follow_inverse_log_frequency():
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[0, 0], [0, 1]]])
    # equal logits: every element costs log 2, whatever its weight
    assert semantic_loss(logits, target).item() == pytest.approx(math.log(2.0), rel=1e-6)
    logits[0, 1] = 5.0  # confident "item" everywhere: the background cells cost most
    w_bg, w_it = 1 / math.log(0.75 + 1.02), 1 / math.log(0.25 + 1.02)
    bg_cost, it_cost = math.log(1 + math.exp(5.0)), math.log(1 + math.exp(-5.0))
    want = (3 * w_bg * bg_cost + w_it * it_cost) / (3 * w_bg + w_it)
    assert semantic_loss(logits, target).item() == pytest.approx(want, rel=1e-5)


def test_focal_centre_loss_by_hand():
    logits = torch.zeros(1, 1, 2)
    target = torch.tensor([[[1.0, 0.0]]])
    pos = 0.01 * 0.5**2 * math.log(2)
    neg = 0.99 * 0.5**2 * math.log(2)
    assert centre_focal_loss(logits[:, 0], target[:, 0]).item() == \
        pytest.approx(pos + neg, rel=1e-6)


def test_embedding_losses_by_hand():
    emb = torch.zeros(1, 2, 1, 4)
    emb[0, 0, 0, :2] = 0.0   # instance 1 at the origin
    emb[0, 0, 0, 2:] = 0.5   # instance 2 at (0.5, 0)
    emb[0, 0, 0, 3] = 0.8    # one element of instance 2 is 0.3 from its centre
    ids = torch.tensor([[[1, 1, 2, 2]]])
    centres = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    parts = embedding_loss(emb, ids, centres)
    assert parts["attract"].item() == pytest.approx((0.0 + (0.3 - 0.1) / 2) / 2, rel=1e-5)
    assert parts["repel"].item() == pytest.approx(1.0 - 0.5, rel=1e-5)
    assert parts["reg"].item() == pytest.approx(0.25, rel=1e-5)


def test_grid_targets_put_one_centre_in_each_instance():
    labels = np.zeros((16, 24), np.uint16)
    labels[2:14, 2:10], labels[2:14, 12:22] = 1, 2
    rgb = np.where(labels[..., None] > 0, 200, 40).astype(np.uint8).repeat(3, axis=2)
    t = grid_targets(rgb, labels)
    assert t["instance_ids"].shape == (4, 6) and set(np.unique(t["instance_ids"])) == {0, 1, 2}
    assert t["centres"].sum() == 2
    assert set(t["instance_ids"][t["centres"] > 0]) == {1, 2}


def test_runner_on_random_and_empty_images(smoke_models):
    runner = SuperpixelRunner(smoke_models / "superpixel_segmenter" / "model.onnx", "cpu")
    rng = np.random.default_rng(0)
    for image in (rng.integers(0, 256, (72, 96, 3), dtype=np.uint8),
                  np.zeros((72, 96, 3), np.uint8)):
        result = runner.segment(image)
        assert result.labels.shape == (72, 96) and result.labels.dtype == np.uint16
        assert result.labels.max() <= len(result.scores)
        assert set(result.seconds) == {"network", "clustering", "superpixels", "upsampling"}
    runner.close()


def test_superpixel_cell_matches_the_grid():
    assert superpixel_cell((480, 640), (60, 80)) == 8
    assert superpixel_cell((240, 320), (60, 80)) == 4


def test_quantized_model_runs_with_the_same_outputs_shape(smoke_models, tmp_path):
    import json

    from perception_nodes.inference.onnx_model import OnnxModel
    from perception_nodes.learning.quantize import quantize_run

    record = quantize_run(smoke_models / "superpixel_segmenter", tmp_path,
                          smoke_models / "data", scenes=4)
    assert record["calibration"] == "train scenes 0-3"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quantization"] == record and summary["args"]["model"] == "superpixel"
    image = np.random.default_rng(1).standard_normal((1, 3, 48, 64)).astype(np.float32)
    out = OnnxModel(tmp_path / "model.onnx", "cpu").run({"image": image})["out"]
    assert out.shape == (1, 34, 12, 16) and np.isfinite(out).all()
    with pytest.raises(FileNotFoundError):
        quantize_run(smoke_models / "superpixel_segmenter", tmp_path / "x",
                     smoke_models / "data", scenes=50)
