"""mono-depth + instances Table I on our cell, metric scale from the tray floor, and a
real-photo check.

    perception eval depth --models "ST=runs/train/depth_st/model.onnx,..." \
        --out docs/results/depth/table1 --json

1. Table I: the middle frame of each held-out ``depth_test`` sweep (held-out items, camera
   poses never seen), each prediction median-scaled to the ground truth (the paper's
   protocol), depth capped at ``--cap`` m. A constant-depth row (median-scaled) shows what
   the shape of the prediction adds.
2. Metric scale at deployment: the fixed overhead camera of the held-out ``test`` scenes;
   the factor comes from the calibrated tray-floor plane (``core.mono_depth``), not from the
   ground truth, and the table compares it with median scaling.
3. scikit-image's ``stereo_motorcycle`` (a real photo; depth is proportional to 1 /
   disparity, known up to scale): median-scaled AbsRel and delta < 1.25 against the
   constant-depth row. Our models only ever saw the simulated cell.
"""

from __future__ import annotations

import numpy as np

from perception_nodes.core.mono_depth import (
    depth_errors,
    evaluated_pixels,
    mean_errors,
    median_scale,
)
from perception_nodes.eval.report import write_report

MIDDLE_FRAME = 2
CONSTANT = "Constant depth"
MIN_DEPTH_M = 0.1


def _errors(gt: np.ndarray, pred: np.ndarray, cap: float, min_depth: float = MIN_DEPTH_M
            ) -> dict[str, float]:
    """Table I's metrics of ``pred`` median-scaled to ``gt``."""
    scale = _median_scale(gt, pred, cap, min_depth)
    return depth_errors(gt, pred * scale, min_depth, cap)


def _median_scale(gt: np.ndarray, pred: np.ndarray, cap: float,
                  min_depth: float = MIN_DEPTH_M) -> float:
    return median_scale(gt, pred, evaluated_pixels(gt, pred, min_depth, cap))


def run_eval(data: str, models: dict[str, str], sequences: int = 100, scenes: int = 100,
             cap: float = 2.0, out_dir: str | None = None) -> dict:
    """Every table for ``models`` (row name -> ONNX path); writes ``report.json`` and
    ``tables.md`` into ``out_dir``."""
    from perception_nodes.inference.depth import MonoDepthEstimator
    from perception_nodes.sim.dataset import generate, load_scene
    from perception_nodes.sim.sequences import generate_sequences

    estimators = {name: MonoDepthEstimator(path, "cpu") for name, path in models.items()}
    sweeps = [load_scene(p) for p in generate_sequences(data, "depth_test", sequences)]
    table1: dict[str, list[dict]] = {name: [] for name in [*models, CONSTANT]}
    for sweep in sweeps:
        rgb, gt = sweep["rgb"][MIDDLE_FRAME], sweep["depth"][MIDDLE_FRAME]
        table1[CONSTANT].append(_errors(gt, np.ones_like(gt), cap))
        for name, est in estimators.items():
            table1[name].append(_errors(gt, est.relative(rgb), cap))

    scale_rows = _floor_plane_rows(estimators, [load_scene(p) for p in
                                                generate(data, "classic_test", scenes)], cap)
    photo = _photo_rows(estimators)
    report = {"sequences": sequences, "scenes": scenes, "cap_m": cap, "models": models,
              "table1": {k: mean_errors(v) for k, v in table1.items()},
              "floor_plane_scale": scale_rows, "stereo_motorcycle": photo}
    if out_dir:
        write_report(out_dir, report, tables(report), "tables.md")
    return report


def _floor_plane_rows(estimators: dict, scenes: list[dict], cap: float) -> dict:
    """Each model through the depth node's path (:meth:`MonoDepthEstimator.metric` with the
    cell's calibration) against the same prediction median-scaled to the ground truth."""
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    with PickingCell(split_config("classic_test"), 0) as cell:
        plane, region, intr = cell.calibrate_floor_plane(), ~cell.outside_tray(0.02), \
            cell.intrinsics
    rows = {}
    for name, est in estimators.items():
        floor_scaled, median_scaled, scale_error = [], [], []
        for scene in scenes:
            gt = scene["depth"]
            if gt.shape != region.shape:
                raise ValueError(f"scene of {gt.shape} vs the calibrated camera's "
                                 f"{region.shape}")
            metric, _ = est.metric(scene["rgb"], intr, plane, region)
            # the median factor on top of the floor's: 1 when the floor got it right
            correction = _median_scale(gt, metric, cap)
            floor_scaled.append(depth_errors(gt, metric, MIN_DEPTH_M, cap))
            median_scaled.append(depth_errors(gt, metric * correction, MIN_DEPTH_M, cap))
            scale_error.append(abs(1.0 / correction - 1.0))
        rows[name] = {"floor_plane": mean_errors(floor_scaled),
                      "median": mean_errors(median_scaled),
                      "scale_error_median": float(np.median(scale_error)),
                      "scale_error_p90": float(np.percentile(scale_error, 90))}
    return rows


def _photo_rows(estimators: dict) -> dict:
    from skimage import data as skdata

    left, _, disparity = skdata.stereo_motorcycle()
    with np.errstate(divide="ignore"):
        gt = np.where(np.isfinite(disparity) & (disparity > 0), 1.0 / disparity, np.nan)
    rows = {CONSTANT: depth_errors(gt, np.full(gt.shape, np.nanmedian(gt)), 0.0, np.inf)}
    for name, est in estimators.items():
        rows[name] = _errors(gt, est.relative(left), np.inf, min_depth=0.0)
    return rows


def tables(report: dict) -> str:
    """The report's tables in Markdown."""
    head = ("| model | AbsRel | SqRel | RMSE (m) | RMSE log | d<1.25 | d<1.25^2 | d<1.25^3 |\n"
            "|---|---|---|---|---|---|---|---|\n")

    def row(name: str, e: dict) -> str:
        return (f"| {name} | {e['abs_rel']:.3f} | {e['sq_rel']:.4f} | {e['rmse']:.4f} | "
                f"{e['rmse_log']:.3f} | {e['a1']:.3f} | {e['a2']:.3f} | {e['a3']:.3f} |\n")

    out = [f"### Table I: {report['sequences']} held-out sweeps, median scaling, cap "
           f"{report['cap_m']} m\n\n", head]
    out += [row(k, v) for k, v in report["table1"].items()]
    out.append(f"\n### Metric scale from the tray floor: {report['scenes']} held-out scenes, "
               "overhead camera\n\n" + head)
    for name, r in report["floor_plane_scale"].items():
        out.append(row(f"{name}, floor-plane scale", r["floor_plane"]))
        out.append(row(f"{name}, median scale (needs ground truth)", r["median"]))
    out.append("\n| model | scale error, median | scale error, 90th percentile |\n|---|---|---|\n")
    for name, r in report["floor_plane_scale"].items():
        out.append(f"| {name} | {100 * r['scale_error_median']:.1f} % | "
                   f"{100 * r['scale_error_p90']:.1f} % |\n")
    out.append("\n### Real photo: scikit-image stereo_motorcycle (median scaling)\n\n" + head)
    out += [row(k, v) for k, v in report["stereo_motorcycle"].items()]
    return "".join(out)
