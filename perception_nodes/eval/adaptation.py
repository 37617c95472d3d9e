"""The closed-loop adaptation table (grasp self-supervision Sec. VI on our cell): one row per
instance model, before and after adapting to the cell's items.

    perception eval adaptation runs/adapt --out docs/results/adaptation

Reads the experiment folder that the commands of docs/results/adaptation.md write:
``grasp/report.json``, ``grasp_noent/report.json`` and ``subtract/report.json``
(``perception adapt`` from grasp segmentation masks, the same without the entropy filter, and
from subtraction masks), ``gt300/model.onnx`` (fine-tuned on 300
labelled scenes of the same items and looks: the upper reference; scored here on the same
labelled scenes and held-out grasps) and ``picks_*.json`` (``perception picks``). Rows
missing from the folder are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

from perception_nodes.eval.report import write_report

# row name -> (adapt run folder, which side of its report)
ROWS = {"deployed (before)": ("grasp", "before"),
        "adapted from grasps (Paste-Grasp-Filter)": ("grasp", "after"),
        "adapted from grasps, entropy filter off": ("grasp_noent", "after"),
        "adapted from subtraction (Paste-Subtract)": ("subtract", "after"),
        "fine-tuned on 300 labelled scenes (reference)": ("gt300", "after")}
PICKS = {"deployed (before)": "picks_before_eval.json",
         "adapted from grasps (Paste-Grasp-Filter)": "picks_grasp.json",
         "adapted from grasps, entropy filter off": "picks_grasp_noent.json",
         "adapted from subtraction (Paste-Subtract)": "picks_subtract.json",
         "fine-tuned on 300 labelled scenes (reference)": "picks_gt300.json"}


def reference_eval(runs: Path) -> dict | None:
    """The labelled-scenes reference scored as the adaptations are (cached in
    ``gt300/eval.json``): on the grasp run's held-out grasps and labelled scenes."""
    from perception_nodes.learning.adapt import evaluate_model, prepare

    model, grasp = runs / "gt300" / "model.onnx", runs / "grasp"
    if not model.exists() or not (grasp / "report.json").exists():
        return (json.loads((runs / "gt300" / "eval.json").read_text())
                if (runs / "gt300" / "eval.json").exists() else None)
    cfg = json.loads((grasp / "adapt.json").read_text())
    return evaluate_model(model, prepare(cfg, grasp), cfg, runs / "gt300" / "eval.json")


def build(runs: Path | str) -> dict:
    runs = Path(runs)
    rows = {}
    for name, (folder, side) in ROWS.items():
        if folder == "gt300":
            metrics = reference_eval(runs)
            report = {"grasps": None, "crops": None, "seconds": None}
        else:
            path = runs / folder / "report.json"
            if not path.exists():
                continue
            report = json.loads(path.read_text())
            metrics = report[side]
        if metrics is None:
            continue
        picks = runs / PICKS[name]
        rows[name] = {
            "grasp_iou": metrics["grasp_iou"], "held_out_grasps": metrics["held_out_grasps"],
            "labelled": metrics["labelled"],
            "crops": report.get("crops") if side == "after" else None,
            "adapt_minutes": round(report["seconds"] / 60, 1)
            if side == "after" and report.get("seconds") else None,
            "picks": json.loads(picks.read_text()) if picks.exists() else None}
    return {"runs": str(runs), "rows": rows}


def _rate(p: dict | None, kind: str) -> str:
    if p is None:
        return "-"
    r = p[kind]
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def table(report: dict) -> str:
    lines = ["| model | crops | `novel` mAP, confidence masks | mAP, prior mean | held-out "
             "grasp IoU | picks | success % [95 % CI] | double picks % | empty grasps % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["rows"].items():
        lab = r["labelled"] or {}
        iou = "-" if r["grasp_iou"] is None else f"{100 * r['grasp_iou']:.1f}"
        p = r["picks"]
        lines.append(
            f"| {name} | {r['crops'] if r['crops'] is not None else '-'} | "
            f"{lab.get('map_confidence_mask', float('nan')):.1f} | "
            f"{lab.get('map_prior_mean', float('nan')):.1f} | {iou} | "
            f"{p['picks'] if p else '-'} | {_rate(p, 'success')} | "
            f"{_rate(p, 'double_pick')} | {_rate(p, 'empty_grasp')} |")
    return "\n".join(lines) + "\n"


def run(runs: str, out_dir: str | None) -> dict:
    report = build(runs)
    if out_dir:
        write_report(out_dir, report, table(report))
    return report
