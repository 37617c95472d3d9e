"""UGainS's Tables 1, 2, 4 and 5 on our cell: foreign objects in a bin of products.

    perception eval anomaly --scenes 200 --out docs/results/anomaly/test --json

Scenes: ``anomaly_test`` (the catalogue's items, three objects of the held-out foreign set
each: duck, teddy, mug, soccer ball, toy brick, marble, never seen by any model);
``anomaly_novel`` puts the same foreign set among held-out items. Pixel metrics
(pAP, FPR95) are over the tray floor region (the calibrated ignore region is left out) with
foreign-object pixels positive, on every second row and column; instance metrics (iAP over
IoU 0.5:0.95, iAP50) over foreign objects of at least 10 visible pixels, as UGainS counts
them. Instance rows' pixel scores are their masks painted with their scores (Table 2's
convention); "+ ensemble" adds them to the pixel score (Sec. 3).
"""

from __future__ import annotations

import numpy as np

from perception_nodes.core.anomaly import (
    AnomalyParams,
    anomalous_points,
    anomaly_instances,
    connected_components,
    grid_points,
    instance_scores,
    oracle_points,
    refine_pixel_scores,
    sample_points,
)
from perception_nodes.core.instance_metrics import (
    InstanceEvaluator,
    fpr_at_tpr,
    pixel_average_precision,
)
from perception_nodes.core.region_grow import region_grow_segmenter
from perception_nodes.eval.report import write_report

MIN_INSTANCE_PX = 10
POINT_COUNTS = (10, 20, 50, 100, 200)
GRID_PER_SIDE = 16


class PixelAccumulator:
    """Pixel scores and truths of many images (every ``stride``-th row and column)."""

    def __init__(self, stride: int = 2) -> None:
        self.stride, self.scores, self.truths = stride, [], []

    def add(self, score: np.ndarray, positive: np.ndarray, valid: np.ndarray) -> None:
        s = (slice(None, None, self.stride),) * 2
        keep = valid[s]
        self.scores.append(np.nan_to_num(score[s][keep], nan=0.0).astype(np.float32))
        self.truths.append(positive[s][keep])

    def metrics(self) -> dict[str, float]:
        scores, truths = np.concatenate(self.scores), np.concatenate(self.truths)
        return {"pap": 100 * pixel_average_precision(scores, truths),
                "fpr95": 100 * fpr_at_tpr(scores, truths, 0.95)}


class Row:
    """One table row: pixel and (optionally) instance metrics."""

    def __init__(self) -> None:
        self.pixels, self.instances = PixelAccumulator(), InstanceEvaluator()
        self.has_instances = False

    def add(self, pixel_score: np.ndarray, positive: np.ndarray, valid: np.ndarray,
            masks: np.ndarray | None = None, scores: np.ndarray | None = None,
            gt: np.ndarray | None = None) -> None:
        self.pixels.add(pixel_score, positive, valid)
        if masks is not None:
            self.has_instances = True
            self.instances.add(masks, scores, gt)

    def metrics(self) -> dict[str, float]:
        out = self.pixels.metrics()
        if self.has_instances:
            out.update(iap=100 * self.instances.mean_ap(), iap50=100 * self.instances.ap_at(0.5))
        return out


def point_hits(points: np.ndarray, gt_labels: np.ndarray) -> tuple[int, int, set[int]]:
    """``(points on a foreign object, points, objects hit)`` for Table 4's point metrics."""
    if len(points) == 0:
        return 0, 0, set()
    values = gt_labels[points[:, 0], points[:, 1]]
    return int((values > 0).sum()), len(points), set(values[values > 0].tolist())


def run_eval(data: str, segmenter: str, prompt_model: str, scenes: int = 200,
             out_dir: str | None = None, no_oe_segmenter: str | None = None,
             num_samples: int = 4, seed: int = 0, split: str = "anomaly_test") -> dict:
    """All tables' rows on the first ``scenes`` scenes of ``split`` (rendered if missing;
    ``anomaly_train`` measures how well the models fit the foreign objects they trained
    on); writes ``report.json`` and ``tables.md`` into ``out_dir``."""
    from perception_nodes.inference.anomaly import AnomalyDetector
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import generate, load_scene, split_config

    if split not in ("anomaly_test", "anomaly_novel", "anomaly_train"):
        raise ValueError(f"split {split!r}: anomaly_test, anomaly_novel or anomaly_train")
    with PickingCell(split_config(split), 0) as cell:
        plane, ignore, intr = cell.calibrate_floor_plane(), cell.outside_tray(0.0), \
            cell.intrinsics
    det = AnomalyDetector(segmenter, prompt_model, AnomalyParams(), num_samples, "cpu", seed)
    no_oe = AnomalyDetector(no_oe_segmenter, None, AnomalyParams(), num_samples, "cpu", seed,
                            "region_grow") if no_oe_segmenter else None
    rows: dict[str, Row] = {}
    points_table: dict[str, list[int]] = {}
    n_gt = 0

    def row(name: str) -> Row:
        return rows.setdefault(name, Row())

    for index, path in enumerate(generate(data, split, scenes)):
        n_gt += _evaluate_scene(load_scene(path), index, det, no_oe, plane, ignore, intr,
                                seed, row, points_table)

    report = {"scenes": scenes, "split": split, "foreign_instances": n_gt, "segmenter": segmenter,
              "prompt_model": prompt_model, "no_oe_segmenter": no_oe_segmenter,
              "rows": {name: r.metrics() for name, r in rows.items()},
              "points": {k: {"precision": 100 * v[0] / max(1, v[1]),
                             "recall": 100 * v[2] / max(1, n_gt)}
                         for k, v in points_table.items()}}
    if out_dir:
        write_report(out_dir, report, tables(report), "tables.md")
    return report



def _evaluate_scene(scene: dict, index: int, det, no_oe, plane: np.ndarray,
                    ignore: np.ndarray, intr, seed: int, row, points_table: dict) -> int:
    """Every row's metrics of one scene; returns its foreign instances."""
    params = AnomalyParams()
    rgb, labels = scene["rgb"], scene["labels"]
    foreign = [v for v in scene["foreign"] if (labels == v).sum() >= MIN_INSTANCE_PX]
    gt_labels = np.where(np.isin(labels, foreign), labels, 0)
    gt = gt_labels[None] == np.asarray(foreign, labels.dtype)[:, None, None]
    positive, valid = gt_labels > 0, ~ignore
    rng = np.random.default_rng([seed, index])
    score, height = det.score(rgb, scene["depth"], intr, plane, ignore)
    if no_oe is not None:
        row("Pixel score, no outlier exposure").add(
            no_oe.score(rgb, scene["depth"], intr, plane, ignore)[0], positive, valid)
    row("Pixel score").add(score, positive, valid)
    masks, s = connected_components(score, params.threshold, ignore, MIN_INSTANCE_PX)
    row("Connected components").add(score, positive, valid, masks, s, gt)
    empty = np.zeros_like(score)
    # Every prompt set of the scene (oracle, FPS, K-means, random, dense grid) in one call:
    # the prompt model encodes the image once. FPS draws the most points once; fewer points
    # are its prefixes. Re-centred prompts are decoded once each, whichever row asks first.
    hot = anomalous_points(score, params.threshold, ignore)
    prompts = {"oracle": oracle_points(gt_labels),
               "fps": sample_points(hot, max(POINT_COUNTS), "fps", rng),
               "kmeans": sample_points(hot, 50, "kmeans", rng),
               "random": sample_points(hot, 50, "random", rng),
               "grid": grid_points(score.shape, GRID_PER_SIDE, ignore)}
    segment = PromptCache(det.segmenter_for(rgb, height), score.shape)
    segment(np.concatenate(list(prompts.values())))

    # oracle: one prompt at each foreign object's innermost pixel
    prob = segment(prompts["oracle"])
    m = prob > params.mask_threshold
    own = np.array([p[k].mean() if k.any() else 0.0 for p, k in zip(prob, m, strict=True)],
                   np.float32)
    row("Centre sampling (oracle), model score").add(
        refine_pixel_scores(empty, m, own), positive, valid, m, own, gt)
    rs = instance_scores(m, prob, score)
    row("Centre sampling (oracle) + pixel-score scoring").add(
        refine_pixel_scores(empty, m, rs), positive, valid, m, rs, gt)

    fps = prompts["fps"]

    def from_points(name: str, n: int, points: np.ndarray, nms: bool = True,
                    ensemble: bool = True, with_confidence: bool = True, recentre: int = 1,
                    segmenter=segment) -> None:
        p = AnomalyParams(num_points=n, nms=nms, with_confidence=with_confidence,
                          recentre=recentre)
        inst = anomaly_instances(score, segmenter, p, rng, ignore, points=points[:n])
        pixel = inst.refined if ensemble else refine_pixel_scores(empty, inst.masks,
                                                                  inst.scores)
        row(name).add(pixel, positive, valid, inst.masks, inst.scores, gt)

    from_points("FPS 50 + pixel-score scoring", 50, fps, nms=False, ensemble=False)
    from_points("FPS 50 + scoring + NMS", 50, fps, ensemble=False)
    from_points("FPS 50 + scoring + NMS + ensemble", 50, fps)
    from_points("FPS 50 + scoring + NMS + ensemble, no re-centring", 50, fps, recentre=0)
    from_points("FPS 50 + mean-score-only scoring + NMS + ensemble", 50, fps,
                with_confidence=False)
    for n in POINT_COUNTS:
        from_points(f"points {n}", n, fps)
    hits = point_hits(fps[:50], gt_labels)
    acc = points_table.setdefault("fps", [0, 0, 0])
    acc[0], acc[1], acc[2] = acc[0] + hits[0], acc[1] + hits[1], acc[2] + len(hits[2])
    for method in ("kmeans", "random"):
        pts = prompts[method]
        from_points(f"sampler {method}", 50, pts)
        hits = point_hits(pts, gt_labels)
        acc = points_table.setdefault(method, [0, 0, 0])
        acc[0], acc[1], acc[2] = acc[0] + hits[0], acc[1] + hits[1], acc[2] + len(hits[2])

    # dense grid prompts, as SAM's automatic mask generator
    grid = prompts["grid"]
    from_points(f"Dense grid {len(grid)} + scoring + NMS", len(grid), grid, ensemble=False)

    # the classical prompt segmenter on the same FPS prompts
    from_points("Region growing, FPS 50 + scoring + NMS + ensemble", 50, fps,
                segmenter=region_grow_segmenter(rgb, height))
    return len(foreign)


class PromptCache:
    """Per-point memo of one frame's prompt segmenter (points ``(P, 2)`` -> ``(P, H, W)``):
    prompts are decoded independently of each other, so a point asked for again (a prefix of
    the FPS points, a re-centred prompt another row already moved there) costs nothing."""

    def __init__(self, segment, shape: tuple[int, int]) -> None:
        self.segment, self.shape, self.memo = segment, shape, {}

    def __call__(self, points: np.ndarray) -> np.ndarray:
        keys = [(int(r), int(c)) for r, c in np.asarray(points).reshape(-1, 2)]
        missing = sorted(set(keys) - self.memo.keys())
        if missing:
            self.memo.update(zip(missing, self.segment(np.asarray(missing, np.int64)),
                                 strict=True))
        if not keys:
            return np.zeros((0, *self.shape), np.float32)
        return np.stack([self.memo[k] for k in keys])


def _fmt(r: dict, key: str) -> str:
    return f"{r[key]:.1f}" if key in r and np.isfinite(r[key]) else "-"


def tables(report: dict) -> str:
    """Tables 1/2 (main), 4 (samplers) and 5 (point counts) as Markdown."""
    rows = report["rows"]
    main = [n for n in rows if not n.startswith(("points ", "sampler "))]
    out = ["| method | pAP | FPR95 | iAP | iAP50 |", "|---|---|---|---|---|"]
    out += [f"| {n} | {_fmt(rows[n], 'pap')} | {_fmt(rows[n], 'fpr95')} | "
            f"{_fmt(rows[n], 'iap')} | {_fmt(rows[n], 'iap50')} |" for n in main]
    out += ["", "| sampler (50 points) | pAP | FPR95 | iAP | iAP50 | point precision | "
            "point recall |", "|---|---|---|---|---|---|---|"]
    for key, name in (("random", "sampler random"), ("kmeans", "sampler kmeans"),
                      ("fps", "points 50")):
        r, pt = rows[name], report["points"][key]
        out.append(f"| {key} | {_fmt(r, 'pap')} | {_fmt(r, 'fpr95')} | {_fmt(r, 'iap')} | "
                   f"{_fmt(r, 'iap50')} | {pt['precision']:.1f} | {pt['recall']:.1f} |")
    out += ["", "| points (FPS) | pAP | FPR95 | iAP | iAP50 |", "|---|---|---|---|---|"]
    for n in POINT_COUNTS:
        r = rows[f"points {n}"]
        out.append(f"| {n} | {_fmt(r, 'pap')} | {_fmt(r, 'fpr95')} | {_fmt(r, 'iap')} | "
                   f"{_fmt(r, 'iap50')} |")
    return "\n".join(out) + "\n"
