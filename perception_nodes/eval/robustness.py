"""Robustness per factor of the randomized cell: mAP of every segmentation method on the scenes
that share one value of one factor (floor family, printed share, layout, camera height band,
depth sensor, bin kind), and recall of white, black and other items.

A scene's factors come from its look (``sim.scene_style.style_for_seed`` of its split's
domain and seed); an item's tone from its pixels in the rendered image (white: bright and
unsaturated; black: dark), since the look draws tones per item.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from perception_nodes.core.instance_metrics import InstanceEvaluator, overlaps

TONES = ("white", "black", "other")


def camera_band(height_m: float) -> str:
    """The camera height band: the training range 0.6-1.1 m, or below / above it (novel)."""
    if height_m < 0.6:
        return "low (<0.6 m)"
    return "high (>1.1 m)" if height_m > 1.1 else "train range (0.6-1.1 m)"


def scene_factors(domain: str | None, seed: int) -> dict[str, str]:
    """The factor values of scene ``seed`` of ``domain`` (``train`` or ``novel``); empty for
    the classic cell (no domain)."""
    if domain is None:
        return {}
    from perception_nodes.sim.scene_style import style_for_seed

    s = style_for_seed(domain, seed)
    printed = "most (>2/3)" if s.printed_share > 2 / 3 else \
        ("some (1/3-2/3)" if s.printed_share > 1 / 3 else "few (<1/3)")
    return {"floor family": s.floor_family, "printed items": printed, "layout": s.layout,
            "camera height": camera_band(s.camera_height_m), "depth sensor": s.depth_sensor,
            "bin": s.bin_kind}


def item_tone(rgb: np.ndarray, mask: np.ndarray) -> str:
    """``white`` (mean of every channel >= 190, spread <= 30), ``black`` (every channel
    <= 50) or ``other``, from an item's ``(H, W, 3) uint8`` pixels under ``mask``."""
    mean = rgb[mask].reshape(-1, 3).mean(axis=0) if mask.any() else np.zeros(3)
    if mean.min() >= 190 and mean.max() - mean.min() <= 30:
        return "white"
    return "black" if mean.max() <= 50 else "other"


class RobustnessTable:
    """Accumulates, per factor value and method, an :class:`InstanceEvaluator`, and per item
    tone and method the items found (best IoU > 0.5)."""

    def __init__(self) -> None:
        self.evaluators: dict = defaultdict(lambda: defaultdict(InstanceEvaluator))
        self.scenes: dict = defaultdict(int)
        self.found: dict = defaultdict(lambda: defaultdict(int))
        self.items: dict = defaultdict(int)

    def add_scene(self, factors: dict[str, str], rgb: np.ndarray, gt: np.ndarray,
                  predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """One scene: its factors, image, ground truth ``(M, H, W)`` and each method's
        ``(masks (N, H, W), scores (N,))`` at image resolution."""
        tones = [item_tone(rgb, m) for m in gt]
        for tone in tones:
            self.items[tone] += 1
        for key in factors.items():
            self.scenes[key] += 1
        for method, (masks, scores) in predictions.items():
            for key in factors.items():
                self.evaluators[key][method].add(masks, scores, gt)
            if len(gt) and len(masks):
                best = overlaps(masks, gt)["iou"].max(axis=0)
            else:
                best = np.zeros(len(gt))
            for tone, iou in zip(tones, best, strict=True):
                self.found[tone][method] += int(iou > 0.5)

    def report(self) -> dict:
        """``{"factors": {factor: {value: {"scenes": n, "map": {method: mAP}}}},
        "item_recall": {tone: {"items": n, "recall": {method: share}}}}``."""
        factors: dict = defaultdict(dict)
        for (factor, value), methods in sorted(self.evaluators.items()):
            factors[factor][value] = {"scenes": self.scenes[(factor, value)],
                                      "map": {m: e.mean_ap() for m, e in methods.items()}}
        recall = {tone: {"items": self.items[tone],
                         "recall": {m: n / max(1, self.items[tone])
                                    for m, n in self.found[tone].items()}}
                  for tone in TONES if self.items[tone]}
        return {"factors": dict(factors), "item_recall": recall}


def markdown(report: dict, methods: list[str]) -> str:
    """The robustness report as two Markdown tables (mAP per factor value; item recall)."""
    head = "| factor | value | scenes | " + " | ".join(methods) + " |"
    rule = "|---|---|---|" + "---|" * len(methods)
    lines = ["mAP (%) on the scenes with each factor value:", "", head, rule]
    for factor, values in report["factors"].items():
        for value, row in values.items():
            cells = " | ".join(f"{100 * row['map'].get(m, float('nan')):.1f}" for m in methods)
            lines.append(f"| {factor} | {value} | {row['scenes']} | {cells} |")
    lines += ["", "Items found (best IoU > 0.5, %) by tone:", "",
              "| tone | items | " + " | ".join(methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    for tone, row in report["item_recall"].items():
        cells = " | ".join(f"{100 * row['recall'].get(m, float('nan')):.1f}" for m in methods)
        lines.append(f"| {tone} | {row['items']} | {cells} |")
    return "\n".join(lines)
