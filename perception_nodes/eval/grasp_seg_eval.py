"""grasp self-supervision Table I on our cell: grasp segmentation of held-out grasps.

    perception eval grasp-segmentation --json

Every method gets the before and after frames of successful single lifts on the test split
(held-out items, light changes and glare in half of them each); baselines see the whole
frame, as they would on the robot; the learned models see the window around the cups.
"-Filter" rows keep only masks passing Sec. III-B.1's filters (contours for all; occlusion
ratio and entropy too for the models), scored on what they keep; the entropy threshold is the
paper's 0.1 scaled to our resolution (``scaled_entropy_threshold``); the paper's own 0.1 and
the threshold ``perception adapt`` uses on the randomized cell get rows too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception_nodes.core.grasp_segmentation import (
    PAPER_T_ENT,
    RANDOMIZED_CELL_T_ENT,
    SUBTRACTORS,
    contour_filter,
    prediction_filter,
    scaled_entropy_threshold,
    score_masks,
    subtraction_mask,
)
from perception_nodes.eval.report import write_report
from perception_nodes.sim.grasp_episodes import load_episodes, usable_grasps

# Table I's learned rows: row name -> model in models/manifest.yaml
GRASP_MODELS = {"Grasp-100-NoAug": "grasp_segmenter_100_noaug",
                "Grasp-100": "grasp_segmenter_100", "Grasp-200": "grasp_segmenter_200",
                "Grasp-Randomized-180": "grasp_segmenter_randomized"}


def run_eval(data: str, models: dict[str, str], out_dir: str | None = None,
             split: str = "test") -> dict:
    """Table I rows for the subtraction baselines and the models ``{row name: onnx path}``
    on the usable grasps of ``data/split``."""
    from perception_nodes.inference.grasp_segmenter import GraspSegRunner

    episodes = usable_grasps(load_episodes(str(Path(data) / split)))
    truths = [e.visible for e in episodes]
    t_ent = scaled_entropy_threshold(episodes[0].visible.shape) if episodes else PAPER_T_ENT
    rows: dict[str, dict] = {}

    def add(name: str, preds: list[np.ndarray], kept: list[bool],
            kept_other: dict[float, list[bool]] | None = None) -> None:
        rows[name] = vars(score_masks(preds, truths, [True] * len(preds)))
        rows[f"{name}-Filter"] = vars(score_masks(preds, truths, kept))
        for t, kept_t in (kept_other or {}).items():
            rows[f"{name}-Filter (t_ent {t})"] = vars(score_masks(preds, truths, kept_t))

    for method in SUBTRACTORS:
        preds = [subtraction_mask(e.before, e.after, method) for e in episodes]
        add(method.upper() if method != "subtract" else "Subtract", preds,
            [contour_filter(p) for p in preds])
    for name, path in models.items():
        runner = GraspSegRunner(path, "cpu")
        preds, kept = [], []
        kept_other: dict[float, list[bool]] = {t: [] for t in (PAPER_T_ENT, RANDOMIZED_CELL_T_ENT)}
        for e in episodes:
            visible, amodal = runner.predict(e.before, e.after, e.grasp_mask)
            preds.append(visible > 0.5)
            kept.append(prediction_filter(visible, amodal, t_ent=t_ent))
            for t, kept_t in kept_other.items():
                kept_t.append(prediction_filter(visible, amodal, t_ent=t))
        add(name, preds, kept, kept_other)
    report = {"grasps": len(episodes), "data": str(data), "split": split, "t_ent": t_ent,
              "rows": rows}
    if out_dir:
        write_report(out_dir, report, table(report))
    return report


def table(report: dict) -> str:
    """Table I as Markdown."""
    lines = ["| method | mIoU | error % | recall % | kept |", "|---|---|---|---|---|"]
    for name, r in report["rows"].items():
        lines.append(f"| {name} | {r['miou']:.1f} | {r['error']:.1f} | {r['recall']:.1f} | "
                     f"{r['kept']}/{r['total']} |")
    return "\n".join(lines) + "\n"
