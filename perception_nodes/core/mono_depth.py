"""Monocular depth: scale recovery and the error metrics of mono-depth + instances Table I.

Depths are ``(H, W) float32`` metres (NaN invalid, ``core.conventions``); a monocular
prediction is metric only up to one unknown factor per image.

- ``median_scale``: the evaluation convention (Table I, "median scaling"): the factor that
  matches the prediction's median to the ground truth's;
- ``floor_plane_scale``: what a deployed cell can do without ground truth: the camera's
  calibrated tray-floor plane gives the floor's depth at every pixel, and the factor is the
  one that puts the predicted floor on it (items stand above the floor, so the floor is the
  farthest surface the prediction shows).
"""

from __future__ import annotations

import numpy as np

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def median_scale(gt: np.ndarray, pred: np.ndarray, valid: np.ndarray) -> float:
    """``median(gt) / median(pred)`` over ``valid`` pixels (Table I's median scaling)."""
    g, p = np.asarray(gt, np.float64)[valid], np.asarray(pred, np.float64)[valid]
    if g.size == 0:
        raise ValueError("no valid pixels to scale with")
    return float(np.median(g) / max(np.median(p), 1e-12))


def floor_plane_scale(pred: np.ndarray, floor_depth: np.ndarray, region: np.ndarray,
                      tolerance: float = 0.02, iterations: int = 5,
                      floor_percentile: float = 10.0) -> float:
    """The factor ``s`` that puts the floor seen in ``s * pred`` on the calibrated floor.

    ``floor_depth (H, W)``: depth of the empty floor per pixel (``floor_plane.plane_depth``);
    ``region (H, W) bool``: where the floor may be seen (inside the tray). Per pixel the
    ratio ``floor / pred`` is ``s`` on the floor and larger on anything standing on it
    (closer than the floor), however much of the floor the items cover; so the start is a
    low percentile of the ratios, then the median over the pixels within ``tolerance``
    (relative) of it, refitted ``iterations`` times. ValueError without valid pixels.
    """
    pred = np.asarray(pred, np.float64)
    floor = np.asarray(floor_depth, np.float64)
    ok = np.asarray(region, bool) & np.isfinite(pred) & (pred > 0) & np.isfinite(floor)
    if not ok.any():
        raise ValueError("no valid floor pixels to scale with")
    ratio = floor[ok] / pred[ok]
    scale = float(np.percentile(ratio, floor_percentile))
    for _ in range(iterations):
        inliers = np.abs(ratio / scale - 1.0) < tolerance
        if not inliers.any():
            break
        scale = float(np.median(ratio[inliers]))
    return scale


def evaluated_pixels(gt: np.ndarray, pred: np.ndarray, min_depth: float = 1e-3,
                     max_depth: float = 80.0) -> np.ndarray:
    """``(H, W) bool``: the pixels Table I scores, finite ground truth in ``(min_depth,
    max_depth]`` (the depth cap) and a finite prediction."""
    gt = np.asarray(gt)
    return np.isfinite(gt) & (gt > min_depth) & (gt <= max_depth) & np.isfinite(pred)


def depth_errors(gt: np.ndarray, pred: np.ndarray, min_depth: float = 1e-3,
                 max_depth: float = 80.0) -> dict[str, float]:
    """Table I's metrics of one image over pixels with finite ground truth in
    ``(min_depth, max_depth]`` (the depth cap); the prediction is clipped to the same range
    as in the KITTI protocol. ``a1..a3`` are the shares with ``max(gt/pred, pred/gt)`` under
    1.25, 1.25^2, 1.25^3."""
    valid = evaluated_pixels(gt, pred, min_depth, max_depth)
    if not valid.any():
        raise ValueError("no valid ground-truth pixels")
    g = np.asarray(gt, np.float64)[valid]
    p = np.clip(np.asarray(pred, np.float64)[valid], min_depth, max_depth)
    thresh = np.maximum(g / p, p / g)
    return {"abs_rel": float(np.mean(np.abs(g - p) / g)),
            "sq_rel": float(np.mean((g - p) ** 2 / g)),
            "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
            "rmse_log": float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
            "a1": float(np.mean(thresh < 1.25)), "a2": float(np.mean(thresh < 1.25**2)),
            "a3": float(np.mean(thresh < 1.25**3))}


def mean_errors(per_image: list[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over images (the usual protocol: per image, then the mean)."""
    if not per_image:
        raise ValueError("no images")
    return {k: float(np.mean([e[k] for e in per_image])) for k in METRICS}
