"""Evaluation of the superpixel instance mode (superpixel one-shot) on simulated scenes.

- Superpixels: our grid-preserving SLIC against ``skimage.segmentation.slic`` and OpenCV's
  ``ximgproc`` SLIC on the same frames, and the plain grid they start from: time, boundary
  recall (ground-truth boundary pixels within 1 px of a superpixel boundary) and
  under-segmentation error (Neubert and Protzel: for every ground-truth segment, the smaller
  part of each superpixel that it cuts, summed and divided by the image size).
- Table I of superpixel one-shot: mAP@50 and mAP (IoU 0.5:0.95) with and without predicted
  centres and
  with and without superpixel upsampling, and seconds per stage (superpixels, network,
  clustering, upsampling), one after the other (see ``SuperpixelRunner``'s ``parallel``).
  The centre threshold is chosen on validation scenes and the paper's 0.7 reported beside
  it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.confidence_masks import labels_to_masks
from perception_nodes.core.grid_slic import grid_slic
from perception_nodes.core.instance_metrics import InstanceEvaluator

CENTRE_SWEEP = (0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01)
VARIANTS = {  # name: (predicted centres, upsampling)
    "all-to-all, bilinear": (False, "bilinear"),
    "all-to-all, superpixels": (False, "superpixel"),
    "centres, bilinear": (True, "bilinear"),
    "centres, superpixels": (True, "superpixel"),
}


def boundary_recall(superpixels: np.ndarray, labels: np.ndarray, tolerance: int = 1) -> float:
    """Share of ground-truth boundary pixels within ``tolerance`` px of a superpixel edge."""
    gt = _edges(labels)
    if not gt.any():
        return float("nan")
    near = cv2.dilate(_edges(superpixels).astype(np.uint8),
                      np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)) > 0
    return float((near & gt).sum() / gt.sum())


def _edges(labels: np.ndarray) -> np.ndarray:
    e = np.zeros(labels.shape, bool)
    e[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    e[1:, :] |= labels[1:, :] != labels[:-1, :]
    return e


def undersegmentation_error(superpixels: np.ndarray, labels: np.ndarray) -> float:
    """Neubert and Protzel's corrected under-segmentation error (0 is perfect)."""
    sp = np.unique(superpixels.ravel(), return_inverse=True)[1]
    gt = np.unique(labels.ravel(), return_inverse=True)[1]
    table = np.bincount(gt * (sp.max() + 1) + sp, minlength=(gt.max() + 1) * (sp.max() + 1))
    table = table.reshape(gt.max() + 1, sp.max() + 1)
    size = table.sum(axis=0)[None, :]
    return float(np.minimum(table, size - table)[table > 0].sum() / labels.size)


def compare_superpixels(frames: Iterable[tuple[np.ndarray, np.ndarray]], cell: int = 8
                        ) -> dict:
    """Time, boundary recall and under-segmentation error of the three SLICs per frame
    (``rgb (H, W, 3) uint8``, ``labels (H, W)``), averaged."""
    from skimage.segmentation import slic

    def ours(rgb: np.ndarray) -> np.ndarray:
        return grid_slic(rgb, cell)

    def opencv(rgb: np.ndarray) -> np.ndarray:
        algo = cv2.ximgproc.createSuperpixelSLIC(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB),
                                                 cv2.ximgproc.SLIC, cell, 10.0)
        algo.iterate(1)
        return algo.getLabels()

    def scikit(rgb: np.ndarray) -> np.ndarray:
        n = rgb.shape[0] * rgb.shape[1] // (cell * cell)
        return slic(rgb, n_segments=n, compactness=10.0, start_label=0)

    def plain(rgb: np.ndarray) -> np.ndarray:
        ys, xs = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
        return (ys // cell) * (-(-rgb.shape[1] // cell)) + xs // cell

    methods = {"regular grid (no superpixels)": plain,
               "grid SLIC (ours, 1 assignment, grid kept)": ours,
               "cv2.ximgproc SLIC (1 iteration)": opencv,
               "skimage slic (defaults: 10 iterations)": scikit}
    stats = {name: {"ms": [], "boundary_recall": [], "undersegmentation_error": [],
                    "superpixels": []} for name in methods}
    for rgb, labels in frames:
        for name, fn in methods.items():
            fn(rgb)  # warm (first-call allocations)
            start = time.perf_counter()
            sp = fn(rgb)
            stats[name]["ms"].append(1e3 * (time.perf_counter() - start))
            stats[name]["boundary_recall"].append(boundary_recall(sp, labels))
            stats[name]["undersegmentation_error"].append(undersegmentation_error(sp, labels))
            stats[name]["superpixels"].append(len(np.unique(sp)))
    return {name: {k: float(np.nanmedian(v) if k == "ms" else np.nanmean(v))
                   for k, v in s.items()} for name, s in stats.items()}


def evaluate_variants(scenes: Iterable[dict[str, np.ndarray]], model_path: str,
                      providers: str = "cpu", centre_threshold: float = 0.7,
                      variants: dict[str, tuple[bool, str]] | None = None) -> dict:
    """superpixel one-shot Table I on scenes (``rgb``, ``labels``): mAP@50, mAP, ms per stage."""
    from perception_nodes.inference.superpixel import SuperpixelRunner
    from perception_nodes.sim.dataset import scene_height

    variants = VARIANTS if variants is None else variants
    runners = {name: SuperpixelRunner(model_path, providers, centres, up, centre_threshold)
               for name, (centres, up) in variants.items()}
    evaluators = {name: InstanceEvaluator() for name in variants}
    seconds: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    n = 0
    for scene in scenes:
        gt = labels_to_masks(scene["labels"])
        height = scene_height(scene) if "camera_pose" in scene else None
        for name, runner in runners.items():
            result = runner.segment(scene["rgb"], height=height)
            masks = result.labels[None] == np.arange(1, len(result.scores) + 1)[:, None, None]
            evaluators[name].add(masks, result.scores, gt)
            for stage, s in result.seconds.items():
                seconds[name].setdefault(stage, []).append(s)
        n += 1
    for runner in runners.values():
        runner.close()
    table = {}
    for name in variants:
        ms = {stage: 1e3 * float(np.median(v)) for stage, v in seconds[name].items()}
        frame = sum(ms.values())
        table[name] = {"map50": evaluators[name].ap_at(0.5), "map": evaluators[name].mean_ap(),
                       "ms": ms, "frame_ms": frame, "fps": 1e3 / frame}
    return {"scenes": n, "centre_threshold": centre_threshold, "table_i": table}


def tune_centre_threshold(scenes: list[dict[str, np.ndarray]], model_path: str,
                          thresholds: tuple[float, ...] = CENTRE_SWEEP) -> dict[float, float]:
    """mAP of centres + superpixels for each centre threshold (on validation scenes)."""
    best = {"centres, superpixels": VARIANTS["centres, superpixels"]}
    return {t: evaluate_variants(scenes, model_path, centre_threshold=t, variants=best)
            ["table_i"]["centres, superpixels"]["map"] for t in thresholds}


def markdown(report: dict) -> str:
    """The two tables of a report as Markdown."""
    sweep = ", ".join(f"{t}: {100 * m:.1f}" for t, m in report["centre_sweep_val_map"].items())
    lines = [f"Scenes: {report['scenes']} held-out (`{report['split']}`), {report['size']}; "
             f"centre threshold {report['centre_threshold']} (validation mAP by threshold on "
             f"{report['val_scenes']} `val` scenes: {sweep}).", "",
             "| variant | mAP@50 | mAP | superpixels ms | network ms | clustering ms | "
             "upsampling ms | frame ms | FPS |", "|---|---|---|---|---|---|---|---|---|"]
    for name, t in report["table_i"].items():
        ms = t["ms"]
        lines.append(f"| {name} | {100 * t['map50']:.1f} | {100 * t['map']:.1f} | "
                     f"{ms.get('superpixels', 0.0):.1f} | {ms['network']:.1f} | "
                     f"{ms['clustering']:.1f} | {ms['upsampling']:.1f} | "
                     f"{t['frame_ms']:.1f} | {t['fps']:.0f} |")
    lines += ["", f"Superpixels on {report['slic_frames']} frames at {report['slic_size']}, "
              "cell 8:", "", "| method | ms (median) | boundary recall | "
              "under-segmentation error | superpixels |", "|---|---|---|---|---|"]
    for name, s in report["superpixels"].items():
        lines.append(f"| {name} | {s['ms']:.1f} | {s['boundary_recall']:.3f} | "
                     f"{s['undersegmentation_error']:.4f} | {s['superpixels']:.0f} |")
    return "\n".join(lines)


def run_eval(data_root: str, split: str, model_path: str, max_scenes: int, out_dir: str,
             slic_frames: int = 20, val_scenes: int = 50) -> dict:
    """Table I on the first ``max_scenes`` scenes of ``split`` (rendered if missing) and the
    superpixel comparison on ``slic_frames`` scenes of the split rendered at 640x480;
    writes ``report.json`` and ``tables.md`` into ``out_dir``."""
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import generate, load_scene, scene_seeds, split_config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The paper's centre threshold (0.7) may not suit our model's calibration: it is chosen
    # on validation scenes (training items, never the test split) and reported beside 0.7.
    val = [load_scene(p) for p in generate(data_root, "val", val_scenes)]
    sweep = tune_centre_threshold(val, model_path)
    tuned = max(sweep, key=lambda t: (sweep[t], t))
    paths = generate(data_root, split, max_scenes)
    report = evaluate_variants((load_scene(p) for p in paths), model_path,
                               centre_threshold=tuned)
    paper = evaluate_variants((load_scene(p) for p in paths), model_path, centre_threshold=0.7,
                              variants={"centres, superpixels": VARIANTS["centres, superpixels"]})
    report["table_i"]["centres 0.7 (paper), superpixels"] = \
        paper["table_i"]["centres, superpixels"]
    report.update(val_scenes=len(val), centre_sweep_val_map=sweep)
    first = load_scene(paths[0])["rgb"].shape
    frames = []
    with PickingCell(split_config(split, 640, 480), seed=scene_seeds(split, 1).start) as cell:
        for seed in scene_seeds(split, slic_frames):
            cell.reset(seed)
            frame = cell.render()
            frames.append((frame.rgb, frame.labels))
    report.update(split=split, size=f"{first[1]}x{first[0]}", model=model_path,
                  superpixels=compare_superpixels(frames), slic_frames=len(frames),
                  slic_size="640x480")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "tables.md").write_text(markdown(report) + "\n")
    return report
