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


def test_prompt_model_card_carries_its_data_and_the_anomaly_metrics(smoke_models, tmp_path):
    import json

    report = {"scenes": 2, "foreign_instances": 6, "rows": {"FPS 50": {
        "pap": 61.25, "fpr95": 12.5, "iap": 20.04, "iap50": 40.0}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    card = publish_model("prompt_segmenter", smoke_models / "prompt_segmenter", "CMD",
                         tmp_path / "models", tmp_path / "report.json", "EVAL", "FPS 50")
    text = card.read_text()
    assert "train, anomaly_train" in text and "never the held-out foreign" in text
    assert "RGB + height above the tray floor" in text and "floor plane (" in text
    assert "pAP 61.2, FPR95 12.5, iAP 20.0, iAP50 40.0; command: `EVAL`" in text
    ap = {"scenes": 3, "split": "test", "rows": {"Paste": {"ap": 30.0, "ap50": 60.0,
                                                            "ap75": 25.55}}}
    (tmp_path / "ap.json").write_text(json.dumps(ap))
    card = publish_model("latent_segmenter", smoke_models / "latent_segmenter", "CMD",
                         tmp_path / "models", tmp_path / "ap.json", "EVAL", "Paste")
    assert "Paste: AP 30.0, AP50 60.0, AP75 25.6" in card.read_text()


def test_depth_model_card_carries_its_data_and_table_i(smoke_models, tmp_path):
    import json

    errors = {"abs_rel": 0.0512, "sq_rel": 0.001, "rmse": 0.0456, "rmse_log": 0.07,
              "a1": 0.9612, "a2": 0.99, "a3": 1.0}
    report = {"sequences": 4, "scenes": 3, "cap_m": 2.0,
              "table1": {"MT DWA": errors},
              "floor_plane_scale": {"MT DWA": {"floor_plane": errors, "median": errors,
                                               "scale_error_median": 0.0123,
                                               "scale_error_p90": 0.05}},
              "stereo_motorcycle": {"MT DWA": errors}}
    (tmp_path / "depth.json").write_text(json.dumps(report))
    card = publish_model("mono_depth", smoke_models / "mono_depth", "CMD", tmp_path / "m",
                         tmp_path / "depth.json", "EVAL", "MT DWA")
    text = card.read_text()
    assert "`depth_train`" in text and "ground-truth depth never read" in text
    assert "depth only" in text and "pose from the separate pose network" in text
    assert "AbsRel 0.051, RMSE 0.0456 m, d<1.25 0.961" in text
    assert "median scale error 1.2 %" in text and "Command: `EVAL`" in text
    assert resolve_model("mono_depth", tmp_path / "m").name == "mono_depth.onnx"
