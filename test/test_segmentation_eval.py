"""The seed-000 evaluation harness, driven by a synthetic distributional segmenter."""

import json

import numpy as np

from perception_nodes.core.confidence_masks import InstancePrediction
from perception_nodes.eval.segmentation_eval import (
    METHODS,
    SegmentationSamples,
    evaluate,
    gripper_radius_px,
    markdown_tables,
    plot_fig5,
)

H, W = 40, 60


def scene(seed):
    """Pairs of touching items (the ambiguity that causes double picks) plus loners."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((H, W), np.uint16)
    label = 0
    for r0 in (2, 22):
        c0 = int(rng.integers(1, 6))
        for width in (12, 12):
            label += 1
            labels[r0 : r0 + 14, c0 : c0 + width] = label
            c0 += width
        label += 1
        labels[r0 : r0 + 10, 40:52] = label
    return {"rgb": np.zeros((H, W, 3), np.uint8), "labels": labels,
            "depth": np.full((H, W), 0.9, np.float32),
            "camera_k": np.array([[60.0, 0, 30], [0, 60.0, 20], [0, 0, 1]])}  # gripper: 3 px


class MergingSampler:
    """Baseline merges every touching pair; each latent sample merges a pair with 30%."""

    def __init__(self, k=8, seed=0):
        self.k, self.rng, self.labels = k, np.random.default_rng(seed), None

    def predict(self, labels, merge_prob):
        masks = []
        for a, b in ((1, 2), (4, 5)):
            if self.rng.uniform() < merge_prob:
                masks.append((labels == a) | (labels == b))
            else:
                masks += [labels == a, labels == b]
        masks += [labels == 3, labels == 6]
        return InstancePrediction(np.array(masks), np.full(len(masks), 0.9, np.float32))

    def __call__(self, rgb, height):
        labels = self.labels
        return SegmentationSamples(self.predict(labels, 1.0), self.predict(labels, 0.0),
                                   [self.predict(labels, 0.3) for _ in range(self.k)])


def test_confidence_masks_beat_an_overconfident_baseline(tmp_path):
    sampler = MergingSampler()

    def scenes():  # the synthetic segmenter reads the ground truth of the current scene
        for s in range(6):
            sc = scene(s)
            sampler.labels = sc["labels"]
            yield sc

    report = evaluate(scenes(), sampler, circles_per_scene=800, seed=1)
    json.dumps(report)  # JSON-ready
    t1, fig5 = report["table_i"], report["fig5"]
    assert report["scenes"] == 6 and set(t1) == set(METHODS)
    assert t1["confidence_mask"]["mr_at_hp"] > t1["baseline"]["mr_at_hp"]
    assert t1["prior_mean"]["map"] == 1.0  # the synthetic prior mean is exact
    assert t1["union_nms"]["ar_iog"] >= t1["confidence_mask"]["ar_iog"]
    rate = {m: v["double_pick_rate"] for m, v in fig5["methods"].items()}
    assert rate["baseline"] > 0.05 and rate["confidence_mask"] < rate["baseline"] / 3
    curve = fig5["confidence_curve"]
    assert [c["p"] for c in curve] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert curve[-1]["double_pick_rate"] < curve[0]["double_pick_rate"]
    md = markdown_tables(report)
    assert all(f"| {m} |" in md for m in METHODS)
    plot_fig5(report, str(tmp_path / "fig5.png"))
    assert (tmp_path / "fig5.png").read_bytes()[:4] == b"\x89PNG"


def test_gripper_radius_follows_depth_and_focal_length():
    k = np.array([[300.0, 0, 0], [0, 300.0, 0], [0, 0, 1]])
    assert gripper_radius_px(k, np.full((4, 4), 0.6)) == 8     # 0.015 m * 300 / 0.6
    assert gripper_radius_px(k, np.full((4, 4), np.nan)) == 4  # no depth: 1 m


def test_photo_check_runs_every_mode_on_a_real_photo(smoke_models, tmp_path):
    from perception_nodes.eval.segmentation_eval import photo_check

    out = photo_check(str(smoke_models / "latent_segmenter" / "model.onnx"),
                      str(smoke_models / "baseline_segmenter" / "model.onnx"),
                      str(tmp_path / "coins.png"), num_samples=2)
    assert out["photo"] == "coins"
    assert set(out["instances"]) == {"baseline", "prior_mean", "confidence_mask"}
    assert (tmp_path / "coins.png").read_bytes()[:4] == b"\x89PNG"
