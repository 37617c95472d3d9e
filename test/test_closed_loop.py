"""`perception picks`: pick outcomes counted from the arm's reports, intervals, the model set
through the parameter service of the running stack; the adaptation table built from runs."""

import json

import pytest

from perception_nodes.eval import adaptation
from perception_nodes.eval.closed_loop import classify, run_picks, summarise, wilson_interval
from perception_nodes.inference.onnx_model import resolve_model
from perception_nodes.learning.model_store import add_version


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_outcomes_are_classified_from_the_arm_report():
    assert classify({"items_lifted": "1", "cup_labels": "3 3 0 0 0"}) == "success"
    assert classify({"items_lifted": "2", "cup_labels": "3 4 0 0 0"}) == "double_pick"
    assert classify({"items_lifted": "0", "cup_labels": "0 0 0 0 0"}) == "empty_grasp"
    assert classify({"items_lifted": "0", "cup_labels": "5 0 0 0 0"}) == "no_lift"
    s = summarise(["success", "success", "double_pick", "empty_grasp"])
    assert s["picks"] == 4 and s["success"]["count"] == 2 and s["success"]["rate"] == 0.5
    assert s["no_lift"]["count"] == 0


def test_the_running_stack_picks_after_its_model_is_set_through_the_parameter_service(
        tmp_path):
    store = tmp_path / "store"
    for _ in range(2):
        add_version(store, "latent_segmenter", resolve_model("latent_segmenter"))
    overrides = {"sim_cell": {"width": 160, "height": 120, "look": "novel",
                              "item_split": "test", "seed": 860_000},
                 "segmentation": {"models_dir": str(store), "model": "latent_segmenter@v1",
                                  "mode": "prior_mean"},
                 "pick_client": {"period_s": 0.5},
                 "grasp_capture": {"dataset_dir": str(tmp_path / "grasps")}}
    result = run_picks(3, overrides=overrides, swap_model="latent_segmenter@v2",
                       timeout_s=240, progress=False)
    assert result["swap"]["model"] == "latent_segmenter@v2"
    assert result["swap"]["model_sha256"]  # what diagnostics said after the swap
    assert result["picks"] == 3
    assert sum(result[k]["count"] for k in ("success", "double_pick", "empty_grasp",
                                             "no_lift")) == 3
    with pytest.raises(RuntimeError, match="refused"):
        run_picks(1, overrides=overrides, swap_model="latent_segmenter@v9", timeout_s=60,
                  progress=False)


def test_the_adaptation_table_has_a_row_per_run_found(tmp_path):
    side = {"grasp_iou": 0.5, "held_out_grasps": 10,
            "labelled": {"map_confidence_mask": 22.1, "map_prior_mean": 20.0}}
    (tmp_path / "grasp").mkdir()
    (tmp_path / "grasp" / "report.json").write_text(json.dumps(
        {"before": side, "after": {**side, "grasp_iou": 0.6}, "crops": 40, "seconds": 600}))
    (tmp_path / "picks_grasp.json").write_text(json.dumps(summarise(["success"] * 3)))
    report = adaptation.build(tmp_path)
    assert list(report["rows"]) == ["deployed (before)",
                                    "adapted from grasps (Paste-Grasp-Filter)"]
    after = report["rows"]["adapted from grasps (Paste-Grasp-Filter)"]
    assert after["grasp_iou"] == 0.6 and after["crops"] == 40 and after["adapt_minutes"] == 10
    text = adaptation.table(report)
    row = "| adapted from grasps (Paste-Grasp-Filter) | 40 | 22.1 | 20.0 | 60.0 | 3 | 100.0"
    assert row in text
