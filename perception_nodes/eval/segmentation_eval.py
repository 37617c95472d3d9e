"""Evaluation of distributional instance segmentation on simulated scenes (Latent-MaskRCNN).

Reproduces the paper's evaluation on our data from any model that yields, per image, a
single-hypothesis baseline, the prior-mean prediction and ``k`` latent samples:

- Table I: MR@HP (IoP, p = theta = 0.75..0.95), AR with IoG, and mAP for baseline, prior
  mean, confidence masks (p = 0.9) and Union-NMS;
- Fig. 5: simulated double-pick rate against pickable area for p = 0.1..1.0 and baseline;
- Table III: ROC AUC of each method's scores predicting IoU > 0.5 with the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from perception_nodes.core.confidence_masks import (
    InstancePrediction,
    confidence_masks,
    labels_to_masks,
    resize_prediction,
    union_nms,
    upsample_prediction,
)
from perception_nodes.core.instance_metrics import InstanceEvaluator, best_iou, roc_auc
from perception_nodes.core.pick_metrics import PickCircleCounts, count_pick_circles

METHODS = ("baseline", "prior_mean", "confidence_mask", "union_nms")
P_VALUES = tuple(np.round(np.arange(0.1, 1.01, 0.1), 1))
# One suction cup (9 mm) plus 6 mm positioning error: where a cup lands. The whole 5-cup
# footprint (44 mm, 13 px at 320x240) fits inside too few items to count circles reliably.
GRIPPER_RADIUS_M = 0.015


@dataclass
class SegmentationSamples:
    """What a distributional segmenter returns for one image (masks ``(N, H, W)``)."""

    baseline: InstancePrediction
    prior_mean: InstancePrediction
    samples: list[InstancePrediction]


# (rgb (H, W, 3) uint8, height (H, W) float32 metres above the floor or None) -> samples
Sampler = Callable[[np.ndarray, np.ndarray | None], SegmentationSamples]


def method_predictions(out: SegmentationSamples, confidence_p: float = 0.9,
                       nms_iou: float = 0.5) -> dict[str, InstancePrediction]:
    """The four methods of Table I from one set of samples."""
    pairs = [(s.masks, s.scores) for s in out.samples]
    pooled = np.concatenate([s.masks for s in out.samples]) if out.samples else \
        out.prior_mean.masks[:0]
    pooled_scores = np.concatenate([s.scores for s in out.samples]) if out.samples else \
        np.zeros(0, np.float32)
    return {
        "baseline": out.baseline,
        "prior_mean": out.prior_mean,
        "confidence_mask": confidence_masks(pairs, confidence_p),
        "union_nms": union_nms(pooled, pooled_scores, nms_iou),
    }


def gripper_radius_px(camera_k: np.ndarray, depth: np.ndarray,
                      radius_m: float = GRIPPER_RADIUS_M) -> int:
    """The gripper's footprint radius in pixels at the scene's median depth."""
    z = float(np.nanmedian(depth)) if np.isfinite(depth).any() else 1.0
    return max(1, int(round(radius_m * float(camera_k[0, 0]) / z)))


def geometric_prediction(scene: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(masks (N, H, W) bool, scores (N,))`` of the training-free geometric mode on a
    scene: the floor plane from the camera pose when the scene has one (the cell's
    calibration), else fitted to the frame; the bin floor polygon as the workspace."""
    from perception_nodes.core.camera_model import PinholeIntrinsics
    from perception_nodes.core.grasp_regions import WorkspaceMask, outside_polygon
    from perception_nodes.inference.geometric import GeometricSegmenter
    from perception_nodes.sim.dataset import scene_floor_plane

    depth = scene["depth"]
    intrinsics = PinholeIntrinsics.from_matrix(scene["camera_k"], depth.shape[1],
                                               depth.shape[0])
    plane = scene_floor_plane(scene) if "camera_pose" in scene else None  # None: fitted
    inside = ~outside_polygon(depth.shape, scene["floor_polygon"]) \
        if "floor_polygon" in scene else None
    out = GeometricSegmenter(None, WorkspaceMask(np.zeros((0, 2))))(depth, intrinsics, plane,
                                                                    inside)
    return labels_to_masks(out.labels), out.scores


EXTRA_METHODS: dict[str, Callable[[dict], tuple[np.ndarray, np.ndarray]]] = {
    "geometric": geometric_prediction}


def evaluate(scenes: Iterable[dict[str, np.ndarray]], sampler: Sampler,
             confidence_p: float = 0.9, p_values: tuple[float, ...] = P_VALUES,
             circles_per_scene: int = 10000, seed: int = 0,
             extra: dict[str, Callable[[dict], tuple[np.ndarray, np.ndarray]]] | None = None,
             upsample: str = "superpixel", domain: str | None = None) -> dict:
    """Run ``sampler`` on every scene (``rgb``, ``labels``, ``depth``, ``camera_k``) and
    report Table I, Fig. 5 and Table III as one JSON-ready dict; ``extra`` methods (name ->
    ``scene -> (masks, scores)`` at image resolution) get rows too. ``upsample``: how the
    model's grid masks reach the image, ``superpixel`` (what the node publishes) or
    ``nearest`` (as before 2026-11-30). ``domain``: the scenes' look domain (``train`` or
    ``novel``), which adds the robustness breakdown per factor of the look
    (``eval.robustness``)."""
    from perception_nodes.eval.robustness import RobustnessTable, scene_factors
    from perception_nodes.sim.dataset import scene_height

    robustness = RobustnessTable()
    extra = extra or {}
    methods = (*METHODS, *extra)
    evaluators = {m: InstanceEvaluator() for m in methods}
    scores: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    good: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    picks = {m: PickCircleCounts() for m in methods}
    curve = {float(p): PickCircleCounts() for p in p_values}
    rng = np.random.default_rng(seed)
    n = 0
    for scene in scenes:
        gt = labels_to_masks(scene["labels"])
        radius = gripper_radius_px(scene["camera_k"], scene["depth"])
        if "camera_pose" in scene and "height" not in scene:  # once, for every method
            scene = {**scene, "height": scene_height(scene)}
        out = sampler(scene["rgb"], scene.get("height"))
        size = scene["labels"].shape
        predictions = {}
        for method, pred in method_predictions(out, confidence_p).items():
            # post-processing ran on the model's grid; the image gets it as the node does
            pred = upsample_prediction(pred, scene["rgb"]) if upsample == "superpixel" \
                else resize_prediction(pred, size)
            predictions[method] = (pred.masks, pred.scores)
            evaluators[method].add(pred.masks, pred.scores, gt)
            scores[method].append(pred.scores)
            good[method].append(best_iou(pred.masks, gt) > 0.5)
            picks[method] += count_pick_circles(pred.masks, scene["labels"], radius,
                                                circles_per_scene, rng)
        for method, fn in extra.items():
            masks, method_scores = fn(scene)
            predictions[method] = (masks, method_scores)
            evaluators[method].add(masks, method_scores, gt)
            scores[method].append(method_scores)
            good[method].append(best_iou(masks, gt) > 0.5)
            picks[method] += count_pick_circles(masks, scene["labels"], radius,
                                                circles_per_scene, rng)
        pairs = [(s.masks, s.scores) for s in out.samples]
        for p in curve:
            masks = (upsample_prediction(confidence_masks(pairs, p), scene["rgb"])
                     if upsample == "superpixel"
                     else resize_prediction(confidence_masks(pairs, p), size)).masks
            curve[p] += count_pick_circles(masks, scene["labels"], radius, circles_per_scene,
                                           rng)
        if domain is not None and "seed" in scene:
            robustness.add_scene(scene_factors(domain, int(scene["seed"])), scene["rgb"], gt,
                                 predictions)
        n += 1
    return {
        "scenes": n,
        "confidence_p": confidence_p,
        "table_i": {m: {"mr_at_hp": evaluators[m].mr_at_hp(), "ar_iog": evaluators[m].ar_iog(),
                        "map": evaluators[m].mean_ap(), "map50": evaluators[m].ap_at(0.5)}
                    for m in methods},
        "robustness": robustness.report(),
        "fig5": {
            "methods": {m: {"double_pick_rate": picks[m].double_pick_rate,
                            "pickable_area": picks[m].pickable_area_fraction} for m in methods},
            "confidence_curve": [{"p": p, "double_pick_rate": c.double_pick_rate,
                                  "pickable_area": c.pickable_area_fraction}
                                 for p, c in curve.items()],
        },
        "table_iii": {m: roc_auc(np.concatenate(scores[m]) if scores[m] else np.zeros(0),
                                 np.concatenate(good[m]) if good[m] else np.zeros(0, bool))
                      for m in methods},
    }


def markdown_tables(report: dict) -> str:
    """Table I and Table III of a report as Markdown (percent, one decimal)."""
    lines = [f"Scenes: {report['scenes']}; confidence masks at p = {report['confidence_p']}.",
             "", "| method | MR@HP (IoP) | AR (IoG) | mAP | mAP@50 | double-pick rate | "
             "pickable area | ROC AUC (IoU > 0.5) |", "|---|---|---|---|---|---|---|---|"]
    for m in report["table_i"]:
        t, f = report["table_i"][m], report["fig5"]["methods"][m]
        map50 = f"{100 * t['map50']:.1f}" if "map50" in t else "–"
        lines.append(f"| {m} | {100 * t['mr_at_hp']:.1f} | {100 * t['ar_iog']:.1f} | "
                     f"{100 * t['map']:.1f} | {map50} | {100 * f['double_pick_rate']:.2f}% | "
                     f"{f['pickable_area']:.3f} | {report['table_iii'][m]:.3f} |")
    if report.get("robustness", {}).get("factors"):
        from perception_nodes.eval.robustness import markdown

        lines += ["", markdown(report["robustness"], list(report["table_i"]))]
    return "\n".join(lines)


def plot_fig5(report: dict, path: str) -> None:
    """Double-pick rate against pickable area (Latent-MaskRCNN Fig. 5) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report["fig5"]["confidence_curve"]
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    ax.plot([100 * c["double_pick_rate"] for c in curve], [c["pickable_area"] for c in curve],
            "o-", label="p-confidence mask")
    for c in curve:
        ax.annotate(f"{c['p']:.1f}", (100 * c["double_pick_rate"], c["pickable_area"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    base = report["fig5"]["methods"]["baseline"]
    ax.plot([100 * base["double_pick_rate"]], [base["pickable_area"]], "s", color="C3",
            label="single-hypothesis baseline")
    ax.set_xlabel("double-pick rate % (lower is better)")
    ax.set_ylabel("pickable area fraction (higher is better)")
    ax.set_title("Double-pick rate vs pickable area")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def onnx_sampler(latent_path: str, baseline_path: str, num_samples: int = 8, seed: int = 0,
                 providers: str = "auto") -> Sampler:
    """A sampler over the exported latent model and the exported baseline."""
    from perception_nodes.inference.segmenter import SegmenterRunner

    latent = SegmenterRunner(latent_path, providers, seed)
    baseline = SegmenterRunner(baseline_path, providers, seed)

    def sample(rgb: np.ndarray, height: np.ndarray | None) -> SegmentationSamples:
        prior_mean, samples = latent.predict(rgb, num_samples, height)
        return SegmentationSamples(baseline.predict(rgb, 0, height)[0], prior_mean, samples)

    return sample


def superpixel_method(model_path: str, providers: str = "cpu"
                      ) -> Callable[[dict], tuple[np.ndarray, np.ndarray]]:
    """The superpixel mode (superpixel one-shot) as an extra method: ``scene -> (masks,
    scores)`` at image resolution, with height above the scene's floor for RGB-H models."""
    from perception_nodes.inference.superpixel import SuperpixelRunner
    from perception_nodes.sim.dataset import scene_height

    runner = SuperpixelRunner(model_path, providers)

    def predict(scene: dict) -> tuple[np.ndarray, np.ndarray]:
        height = None if not runner.needs_height else \
            scene["height"] if "height" in scene else scene_height(scene)
        result = runner.segment(scene["rgb"], height=height)
        return labels_to_masks(result.labels), result.scores

    return predict


def run_eval(data_root: str, split: str, latent_path: str, baseline_path: str,
             max_scenes: int, out_dir: str, num_samples: int = 8, seed: int = 0,
             upsample: str = "superpixel", superpixel_path: str | None = None) -> dict:
    """Evaluate on the first ``max_scenes`` scenes of a split (rendered if missing); writes
    ``report.json``, ``tables.md`` and ``fig5.png`` into ``out_dir``; returns the report."""
    import json
    from pathlib import Path

    from perception_nodes.sim.dataset import SPLIT_DOMAIN, generate, load_scene

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The first max_scenes seeds of the split, rendered here if a previous
    # `perception dataset` run has not: the command alone reproduces the tables.
    scenes = (load_scene(p) for p in generate(data_root, split, max_scenes))
    extra = dict(EXTRA_METHODS)
    if superpixel_path:
        extra["superpixel"] = superpixel_method(superpixel_path)
    report = evaluate(scenes, onnx_sampler(latent_path, baseline_path, num_samples, seed),
                      seed=seed, extra=extra, upsample=upsample,
                      domain=SPLIT_DOMAIN.get(split))
    report.update(split=split, upsample=upsample, num_samples=num_samples,
                  latent_model=latent_path,
                  baseline_model=baseline_path, superpixel_model=superpixel_path)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "tables.md").write_text(markdown_tables(report) + "\n")
    plot_fig5(report, str(out / "fig5.png"))
    return report


def photo_check(latent_path: str, baseline_path: str, out_png: str, photo: str = "coins",
                num_samples: int = 8, seed: int = 0, score_threshold: float = 0.3) -> dict:
    """Run every mode on a real photo from scikit-image's data (never trained on) and write
    a panel: input, baseline, prior mean, confidence mask (p = 0.9), its confidence image."""
    import cv2
    import skimage.data

    from perception_nodes.core.overlay import draw_label_overlay
    from perception_nodes.inference.segmenter import SegmenterRunner, label_image, run_mode

    image = getattr(skimage.data, photo)()
    rgb = np.ascontiguousarray(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3])
    latent = SegmenterRunner(latent_path, "cpu", seed)
    baseline = SegmenterRunner(baseline_path, "cpu", seed)
    panels, counts = [rgb], {}
    for mode, runner in (("baseline", baseline), ("prior_mean", latent),
                         ("confidence_mask", latent)):
        # what the node publishes with its default score threshold
        labels, conf, scores = label_image(run_mode(runner, rgb, mode, num_samples),
                                           rgb.shape[:2], score_threshold)
        counts[mode] = int(len(scores))
        panels.append(draw_label_overlay(rgb, labels))
        if mode == "confidence_mask":
            panels.append(cv2.applyColorMap((conf * 255).astype(np.uint8),
                                            cv2.COLORMAP_VIRIDIS)[..., ::-1])
    panels = [np.ascontiguousarray(p).copy() for p in panels]
    for panel, title in zip(panels, ("input", "baseline", "prior mean", "confidence p=0.9",
                                     "per-pixel confidence"), strict=True):
        cv2.putText(panel, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2)
    cv2.imwrite(out_png, cv2.cvtColor(np.hstack(panels), cv2.COLOR_RGB2BGR))
    return {"photo": photo, "instances": counts}
