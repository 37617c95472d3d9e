"""Closed-loop picking in the simulated cell: perception chooses, the simulated arm picks.

Latent-MaskRCNN Sec. V-E (Table II) on our cell: only the segmentation changes between
configurations; the grasp planner (``core.grasp_regions``), the gripper, the scenes (the
held-out test split, the same seeds in the same order) and the physics stay the same. Each
scene is picked up to ``picks_per_scene`` times, re-perceived before every pick, as a cell
clears a bin; a spot whose pick lifted nothing is not tried again in that scene.

Outcomes come from the physics, never from labels: success = exactly one item left the
tray; double pick = two or more; grasp on a non-object = no cup touched an item.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.grasp_regions import (
    GraspParams,
    plan_grasps,
)
from perception_nodes.inference.geometric import segment_rgbd
from perception_nodes.sim.suction import CUP_SEALED, SuctionGripperSpec, execute_pick

CONFIGURATIONS = ("baseline", "prior_mean", "confidence_mask", "superpixel", "geometric",
                  "ground_truth")
# the depth camera, or the depth node's model (mono-depth + instances)
DEPTH_SOURCES = ("sensor", "mono")
FIRST_SEED = 200_000  # the test split (held-out items), as `perception eval segmentation`


@dataclass
class PickRecord:
    """One executed pick (or a frame where perception offered no grasp: ``executed`` False)."""

    configuration: str
    scene_seed: int
    pick: int
    executed: bool
    lifted: int = 0
    sealed_cups: int = 0
    expected_cups: int = 0
    non_object: bool = False
    risk: float = 0.0
    quality: float = 0.0
    perception_s: float = 0.0
    # where the executed grasp's centre pixel was, by the sim's truth: "item", "floor"
    # (within 1 cm of the bin floor), "other" (the rim, a wall, outside the bin)
    target: str = ""


class Perception:
    """Image (+ ground truth for ``ground_truth``) to labels, confidence and samples: the
    segmentation node's path (``ModeSegmenter``) with the default models (or those named in
    ``model_names``: model kind ``latent``/``baseline``/``superpixel`` -> manifest name), on
    the CPU."""

    def __init__(self, configuration: str, models_dir: str | None = None, threads: int = 0,
                 seed: int = 0, model_names: dict[str, str] | None = None) -> None:
        from perception_nodes.inference.onnx_model import resolve_model
        from perception_nodes.inference.segmenter import (
            DEFAULT_MODELS,
            ModeSegmenter,
            model_kind,
        )

        if configuration not in CONFIGURATIONS:
            raise ValueError(f"unknown configuration {configuration!r}; one of "
                             f"{CONFIGURATIONS}")
        self.segmenter = self.geometric = None
        if configuration == "geometric":  # training-free: the cell's calibration, no model
            from perception_nodes.core.grasp_regions import WorkspaceMask
            from perception_nodes.inference.geometric import GeometricSegmenter

            # the calibration comes per frame: the randomized cell's camera moves per scene
            self.geometric = GeometricSegmenter(None, WorkspaceMask(np.zeros((0, 2))))
        elif configuration != "ground_truth":
            kind = model_kind(configuration)
            path = resolve_model((model_names or {}).get(kind, DEFAULT_MODELS[kind]),
                                 models_dir)
            self.segmenter = ModeSegmenter(configuration, path, "cpu", seed, threads)

    def __call__(self, frame, floor: np.ndarray, inside: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(labels, confidence or None, samples or None)`` of one frame (a sim ``Frame``);
        the geometric mode reads its depth with the cell's calibration: the ``floor`` plane
        and the bin floor ``inside`` the walls."""
        if self.segmenter is None and self.geometric is None:
            return frame.labels, None, None
        out = segment_rgbd(self.segmenter or self.geometric, frame.rgb, frame.depth,
                           frame.intrinsics, floor, inside=inside)
        if self.geometric is not None:
            return out.labels, None, None
        return out.labels, out.confidence, out.samples


def run_configuration(configuration: str, picks: int, picks_per_scene: int = 5,
                      first_seed: int = FIRST_SEED, threads: int = 0,
                      params: GraspParams | None = None, models_dir: str | None = None,
                      depth_source: str = "sensor", depth_model: str | None = None,
                      split: str = "test", floor_rule: bool = True,
                      model_names: dict[str, str] | None = None) -> list[PickRecord]:
    """``picks`` executed picks of one configuration on scenes ``first_seed, +1, ...`` of
    ``split`` (its look and items; ``first_seed`` should lie in its seed range).

    ``depth_source`` ``mono`` plans on the monocular depth model's output made metric from
    the calibrated floor plane (the depth node's path) instead of the depth camera's:
    ``depth_model`` (an ONNX path) or the published ``mono_depth``. ``floor_rule`` gives the
    planner the cell's calibrated floor plane (nothing on the floor is an item)."""
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    spec = SuctionGripperSpec()
    layout = spec.layout
    perceive = Perception(configuration, models_dir, threads, model_names=model_names)
    depth_of = None
    records: list[PickRecord] = []
    seed = first_seed
    with PickingCell(split_config(split), seed=seed) as cell:
        if depth_source == "mono":
            depth_of = _mono_depth(cell, models_dir, threads, depth_model)
        while sum(r.executed for r in records) < picks:
            cell.reset(seed)
            avoid = None
            for k in range(picks_per_scene):
                if not cell.items or sum(r.executed for r in records) >= picks:
                    break
                frame = cell.render()
                ignore = cell.outside_tray() if avoid is None else cell.outside_tray() | avoid
                start = time.perf_counter()
                floor = cell.floor_plane()
                labels, confidence, samples = perceive(frame, floor, ~cell.outside_tray(0.01))
                depth = frame.depth if depth_of is None else depth_of(frame)
                plan = plan_grasps(labels, depth, frame.intrinsics, layout, params,
                                   confidence, samples, ignore,
                                   floor if floor_rule else None)
                seconds = time.perf_counter() - start
                if not plan.candidates:
                    records.append(PickRecord(configuration, seed, k, False,
                                              perception_s=seconds))
                    break
                best = plan.candidates[0]
                pose = frame.camera_pose @ best.pose
                out = execute_pick(cell, pose[:3, 3], pose[:3, :3], spec, pick_index=k)
                records.append(PickRecord(
                    configuration, seed, k, True, out.num_lifted,
                    int((out.cup_state == CUP_SEALED).sum()), best.expected_cups,
                    bool((out.cup_labels == 0).all()), best.risk, best.quality, seconds,
                    _target(frame, floor, best.u, best.v)))
                if out.num_lifted == 0:  # a cell does not retry the same spot
                    spot = np.zeros(frame.labels.shape, np.uint8)
                    cv2.circle(spot, (best.u, best.v), 6, 1, -1)
                    avoid = spot.astype(bool) if avoid is None else avoid | spot.astype(bool)
            seed += 1
    return records


def _target(frame, floor: np.ndarray, u: int, v: int) -> str:
    """Where a grasp centre pixel is, by the sim's truth (labels, clean-enough depth)."""
    if frame.labels[v, u] > 0:
        return "item"
    point = frame.intrinsics.backproject(u, v, frame.depth[v, u])
    height = float(floor[:3] @ point + floor[3]) if np.isfinite(point).all() else np.inf
    return "floor" if abs(height) < 0.01 else "other"


def _mono_depth(cell, models_dir: str | None, threads: int, model: str | None = None):
    """``frame -> metric depth`` from the monocular model and the cell's floor calibration
    (calibrating empties the cell: call before the first scene)."""
    from perception_nodes.inference.depth import MonoDepthEstimator
    from perception_nodes.inference.onnx_model import resolve_model

    path = model or resolve_model("mono_depth", models_dir)
    estimator = MonoDepthEstimator(path, "cpu", threads)
    plane, region = cell.calibrate_floor_plane(), ~cell.outside_tray(0.02)
    return lambda frame: estimator.metric(frame.rgb, frame.intrinsics, plane, region)[0]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (robust near 0 and 1); (0, 1), nothing
    known, for n = 0 (a JSON report stays valid: no NaN)."""
    if n == 0:
        return 0.0, 1.0
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(records: list[PickRecord], bootstrap: int = 2000, seed: int = 0) -> dict:
    """Table II's quantities with 95 % intervals (Wilson for rates, normal for the mean
    sealed cups, bootstrap over picks for picks per hour of perception compute)."""
    done = [r for r in records if r.executed]
    n = len(done)
    out: dict = {"picks": n, "scenes": len({r.scene_seed for r in records}),
                 "no_grasp_frames": sum(not r.executed for r in records)}
    if n == 0:
        return out
    lifted = np.array([r.lifted for r in done])
    for name, hit in (("success", lifted == 1), ("double_pick", lifted >= 2),
                      ("non_object", np.array([r.non_object for r in done])),
                      ("nothing_lifted", lifted == 0)):
        k = int(hit.sum())
        lo, hi = wilson_interval(k, n)
        out[name] = {"rate": k / n, "count": k, "ci95": [lo, hi]}
    cups = np.array([r.sealed_cups for r in done], float)
    half = 1.96 * cups.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    out["sealed_cups"] = {"mean": float(cups.mean()), "ci95": [cups.mean() - half,
                                                                cups.mean() + half]}
    out["expected_cups_mean"] = float(np.mean([r.expected_cups for r in done]))
    targets = [r.target for r in done if r.target]
    if targets:
        out["top_grasp_on"] = {t: targets.count(t) / len(targets)
                               for t in ("item", "floor", "other")}
    seconds = np.array([r.perception_s for r in records])
    success = np.array([r.executed and r.lifted == 1 for r in records], float)
    out["perception_ms_mean"] = float(seconds.mean() * 1e3)
    rate = 3600.0 * success.sum() / seconds.sum()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(records), (bootstrap, len(records)))
    boot = 3600.0 * success[draws].sum(axis=1) / seconds[draws].sum(axis=1)
    out["picks_per_hour_perception"] = {"value": float(rate),
                                        "ci95": [float(np.percentile(boot, 2.5)),
                                                 float(np.percentile(boot, 97.5))]}
    return out


PLANNERS = {"full": GraspParams(), "masks_only": GraspParams(check_clearance=False)}


def _run_one(job: tuple) -> list[dict]:
    (configuration, picks, per_scene, first_seed, threads, planner, depth_source, model,
     split, floor_rule, names) = job
    return [asdict(r) for r in run_configuration(configuration, picks, per_scene, first_seed,
                                                 threads, PLANNERS[planner],
                                                 depth_source=depth_source, depth_model=model,
                                                 split=split, floor_rule=floor_rule,
                                                 model_names=names)]


def run_pick_eval(configurations: list[str], picks: int, picks_per_scene: int = 5,
                  first_seed: int = FIRST_SEED, jobs: int = 1, out_dir: str | None = None,
                  planner: str = "full", depth_source: str = "sensor",
                  depth_model: str | None = None, split: str = "test",
                  floor_rule: bool = True, model_names: dict[str, str] | None = None) -> dict:
    """Every configuration on the same seeds; ``jobs`` processes (one ONNX thread each when
    more than one, so configurations do not fight over the cores). ``planner`` ``full`` is
    the grasp_regions node's; ``masks_only`` trusts the masks alone (an ablation)."""
    for c in configurations:
        if c not in CONFIGURATIONS:
            raise ValueError(f"unknown configuration {c!r}; one of {CONFIGURATIONS}")
    if planner not in PLANNERS:
        raise ValueError(f"unknown planner {planner!r}; one of {sorted(PLANNERS)}")
    if depth_source not in DEPTH_SOURCES:
        raise ValueError(f"unknown depth source {depth_source!r}; one of {DEPTH_SOURCES}")
    threads = 1 if jobs > 1 else 0
    work = [(c, picks, picks_per_scene, first_seed, threads, planner, depth_source,
             depth_model, split, floor_rule, model_names) for c in configurations]
    start = time.time()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_run_one, work))
    else:
        results = [_run_one(job) for job in work]
    report = {"split": split, "floor_rule": floor_rule, "planner": planner,
              "depth": depth_source,
              "depth_model": depth_model,
              "picks_per_configuration": picks,
              "picks_per_scene": picks_per_scene,
              "first_seed": first_seed, "jobs": jobs, "onnx_threads": threads or "all",
              "model_names": model_names or {},
              "wall_s": round(time.time() - start, 1), "configurations": {}}
    from perception_nodes.sim.dataset import SPLIT_DOMAIN

    for c, rows in zip(configurations, results, strict=True):
        records = [PickRecord(**r) for r in rows]
        report["configurations"][c] = summarise(records)
        if split in SPLIT_DOMAIN:
            report["configurations"][c]["by_layout"] = {
                layout: summarise(subset)
                for layout, subset in by_layout(records, SPLIT_DOMAIN[split]).items()}
    if out_dir:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(report, indent=1))
        (folder / "records.json").write_text(json.dumps(
            {c: rows for c, rows in zip(configurations, results, strict=True)}))
        table = pick_table(report)
        if any("by_layout" in s for s in report["configurations"].values()):
            table += "\nOn the same-SKU bins only (Latent-MaskRCNN Table II):\n\n" + \
                layout_table(report)
        (folder / "table.md").write_text(table)
    return report


def by_layout(records: list[PickRecord], domain: str) -> dict[str, list[PickRecord]]:
    """Records grouped by their scene's layout (``mixed``, ``pile``, ``same_sku``: the
    randomized look of ``domain``)."""
    from perception_nodes.sim.scene_style import style_for_seed

    groups: dict[str, list[PickRecord]] = {}
    for r in records:
        groups.setdefault(style_for_seed(domain, r.scene_seed).layout, []).append(r)
    return dict(sorted(groups.items()))


def layout_table(report: dict, layout: str = "same_sku") -> str:
    """Latent-MaskRCNN Table II on the picks from one layout's scenes (same-SKU bins: flush
    copies of one item, where a merged mask is a double pick) as Markdown."""
    lines = [f"| configuration | picks on {layout} bins | success % | double pick % | "
             "sealed cups |", "|---|---|---|---|---|"]
    for name, s in report["configurations"].items():
        sub = s.get("by_layout", {}).get(layout, {})
        if not sub.get("picks"):
            continue
        lo, hi = sub["double_pick"]["ci95"]
        slo, shi = sub["success"]["ci95"]
        cups = sub["sealed_cups"]
        lines.append(f"| {name} | {sub['picks']} | {100 * sub['success']['rate']:.1f} "
                     f"[{100 * slo:.1f}, {100 * shi:.1f}] | "
                     f"{100 * sub['double_pick']['rate']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
                     f" | {cups['mean']:.2f} |")
    return "\n".join(lines) + "\n"


def pick_table(report: dict) -> str:
    """The report as a Markdown table (rates in %, 95 % intervals in brackets)."""
    def pct(d: dict) -> str:
        lo, hi = d["ci95"]
        return f"{100 * d['rate']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"

    lines = ["| configuration | picks | success % | double pick % | non-object % | "
             "nothing lifted % | top grasp on floor / other % | sealed cups | perception ms "
             "| picks/h of perception |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["configurations"].items():
        if not s.get("picks"):
            lines.append(f"| {name} | 0 | | | | | | | | |")
            continue
        cups, pph = s["sealed_cups"], s["picks_per_hour_perception"]
        on = s.get("top_grasp_on")
        where = f"{100 * on['floor']:.1f} / {100 * on['other']:.1f}" if on else "-"
        lines.append(
            f"| {name} | {s['picks']} | {pct(s['success'])} | {pct(s['double_pick'])} | "
            f"{pct(s['non_object'])} | {pct(s['nothing_lifted'])} | {where} | "
            f"{cups['mean']:.2f} [{cups['ci95'][0]:.2f}, {cups['ci95'][1]:.2f}] | "
            f"{s['perception_ms_mean']:.0f} "
            f"| {pph['value']:.0f} [{pph['ci95'][0]:.0f}, {pph['ci95'][1]:.0f}] |")
    return "\n".join(lines) + "\n"
