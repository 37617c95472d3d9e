"""The latent segmenter without trained weights, its losses, and a seeded smoke training."""

import json

import numpy as np
import pytest
import torch

from perception_nodes.inference.onnx_model import OnnxModel
from perception_nodes.learning.model import LatentSegmenter, SamplingExport, kl_divergence
from perception_nodes.learning.train import focal_heatmap_loss, kl_beta, main


@pytest.mark.parametrize("latent_dim", [64, 0])
def test_shapes_on_random_and_empty_inputs(latent_dim):
    torch.manual_seed(0)
    model = LatentSegmenter(latent_dim=latent_dim).eval()
    image = torch.randn(2, 3, 48, 64)
    ids = torch.zeros(2, 12, 16, dtype=torch.int64)
    ids[0, 2:6, 3:9] = 1  # one instance in image 0, an empty tray in image 1
    with torch.no_grad():
        out = model(image, ids)
        assert out["out"].shape == (2, 4, 12, 16)
        assert torch.isfinite(out["out"]).all()
        samples = SamplingExport(model)(image[:1], torch.randn(5, max(1, latent_dim)))
        assert samples.shape == (5, 4, 12, 16)
        zeros = model(torch.zeros(1, 3, 48, 64))["out"]
        assert torch.isfinite(zeros).all()
    if latent_dim:  # different draws decode differently
        assert not torch.allclose(samples[0], samples[1])
        assert set(out) == {"out", "mu", "logvar", "prior_mu", "prior_logvar"}


def test_kl_and_warmup():
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert kl_divergence(mu, logvar, mu, logvar).item() == pytest.approx(0.0)
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    assert kl_divergence(mu + 1, logvar, mu, logvar).item() == pytest.approx(2.0)
    assert kl_beta(10, 100, (0.3, 0.7), 1.0) == 0.0
    assert kl_beta(50, 100, (0.3, 0.7), 1.0) == pytest.approx(0.5)
    assert kl_beta(90, 100, (0.3, 0.7), 2.0) == 2.0


def test_focal_loss_prefers_the_target():
    target = torch.zeros(1, 8, 8)
    target[0, 3, 3] = 1.0
    good = torch.full((1, 8, 8), -6.0)
    good[0, 3, 3] = 6.0
    assert focal_heatmap_loss(good, target) < focal_heatmap_loss(-good, target)


def test_smoke_training_is_seeded_and_exports_a_checked_onnx(tmp_path):
    args = ["--preset", "smoke", "--data", str(tmp_path / "data")]
    first = main(args + ["--out", str(tmp_path / "a")])
    second = main(args + ["--out", str(tmp_path / "b")])
    assert first["log"][-1]["total"] == pytest.approx(second["log"][-1]["total"], rel=1e-5)
    assert np.isfinite(first["log"][-1]["total"]) and first["onnx_max_abs_diff"] < 1e-3
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    assert ckpt["input_size"] == (48, 64) and ckpt["args"]["latent_dim"] == 64
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["steps"] == 3
    onnx = OnnxModel(tmp_path / "a" / "model.onnx", providers="cpu")
    image = np.zeros((1, 3, 48, 64), np.float32)
    for k in (1, 3):
        assert onnx.run({"image": image, "eps": np.zeros((k, 64), np.float32)})["out"].shape \
            == (k, 4, 12, 16)


def test_init_starts_from_a_checkpoint_and_rejects_another_architecture(tmp_path):
    args = ["--preset", "smoke", "--data", str(tmp_path / "data")]
    main(args + ["--out", str(tmp_path / "a")])
    first = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    main(args + ["--out", str(tmp_path / "b"), "--steps", "0", "--init",
                 str(tmp_path / "a" / "checkpoint.pt")])
    second = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert second["args"]["init"].endswith("checkpoint.pt")
    for name, weights in first["model"].items():
        assert torch.equal(weights, second["model"][name]), name
    with pytest.raises(ValueError, match="width"):
        main(args + ["--out", str(tmp_path / "c"), "--width", "32", "--init",
                     str(tmp_path / "a" / "checkpoint.pt")])
