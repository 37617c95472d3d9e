"""Publishing a training run: ONNX, card and manifest entry that the nodes can resolve."""

import yaml

from perception_nodes.inference.onnx_model import resolve_model, sha256_of
from perception_nodes.learning.model_card import publish_model


def test_published_model_resolves_and_its_card_names_the_command(smoke_models, tmp_path):
    command = "perception train --preset smoke --out X"
    card = publish_model("latent_segmenter", smoke_models / "latent_segmenter", command,
                         tmp_path)
    publish_model("baseline_segmenter", smoke_models / "baseline_segmenter", command + " -b",
                  tmp_path)
    path = resolve_model("latent_segmenter", tmp_path)
    assert path == tmp_path / "latent_segmenter.onnx"
    text = card.read_text()
    assert command in text and sha256_of(path) in text and "latent_dim 64" in text
    entries = yaml.safe_load((tmp_path / "manifest.yaml").read_text())["models"]
    assert set(entries) == {"latent_segmenter", "baseline_segmenter"}
    assert "single-hypothesis baseline" in (tmp_path / "baseline_segmenter.md").read_text()
