"""Anomaly instances from a per-pixel anomaly score (UGainS Sec. 3).

A score map ``(H, W) float32`` (higher = more anomalous; NaN = no score) is thresholded,
point prompts are drawn from the anomalous pixels (farthest point sampling by default, K-means
and random sampling for comparison; Sec. 3 and 4.2), a promptable segmenter turns every point
into a mask (and again from that mask's centre: our addition), each mask is scored by the
mean anomaly score under it (times the segmenter's confidence in the mask: our addition),
duplicates are removed by NMS, and the instance scores are added back onto the pixel scores
(the "RbA ensemble").
Points are ``(N, 2) int64`` as ``(row, col)`` pixel indices; masks ``(N, H, W) bool``; an
ignore mask ``(H, W) bool`` marks pixels never sampled (tray walls, outside the tray).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse

from perception_nodes.core.confidence_masks import mask_iou

SAMPLERS = ("fps", "kmeans", "random")


def occupancy(height: np.ndarray, min_height_m: float = 0.004, ramp_m: float = 0.006
              ) -> np.ndarray:
    """``(H, W) float32`` in [0, 1]: how surely something stands on the tray floor at a
    pixel (0 up to ``min_height_m`` above it, 1 from ``min_height_m + ramp_m``; 0 where the
    height is unknown)."""
    h = np.nan_to_num(np.asarray(height, np.float32), nan=0.0)
    return np.clip((h - min_height_m) / ramp_m, 0.0, 1.0).astype(np.float32)


def known_item_claim(fg: np.ndarray, labels: np.ndarray, scores: list[np.ndarray]
                     ) -> np.ndarray:
    """How much the known-item hypotheses claim each cell, ``(h, w) float32`` in [0, 1]:
    the mean over hypotheses (prior mean and latent samples) of the foreground probability
    times the score of the instance the cell is assigned to (0 where none). ``fg (K, h, w)``
    probabilities, ``labels (K, h, w)`` instance ids 1..N_k, ``scores[k] (N_k,)``.

    Our adaptation of RbA (UGainS Sec. 3, Eq. 1): RbA sums over a Mask2Former's masks the
    mask probability times its class confidence; our masks of one hypothesis are disjoint,
    so the sum is the one covering mask's, and the latent samples are averaged.
    """
    fg = np.asarray(fg, np.float32)
    claim = np.zeros(fg.shape[1:], np.float32)
    for k in range(len(fg)):
        lut = np.concatenate([[0.0], np.asarray(scores[k], np.float32)]).astype(np.float32)
        claim += fg[k] * lut[np.asarray(labels[k], np.int64)]
    return claim / max(1, len(fg))


def anomaly_score(claim: np.ndarray, occupied: np.ndarray, ignore: np.ndarray | None = None
                  ) -> np.ndarray:
    """``(H, W) float32`` anomaly score: something is there (``occupied``) and no known-item
    hypothesis claims it (``1 - claim``); NaN in ``ignore`` (tray walls, outside the tray)."""
    score = (np.asarray(occupied, np.float32) * (1.0 - np.asarray(claim, np.float32)))
    if ignore is not None:
        score = np.where(np.asarray(ignore, bool), np.nan, score).astype(np.float32)
    return score


def anomalous_points(score: np.ndarray, threshold: float, ignore: np.ndarray | None = None
                     ) -> np.ndarray:
    """``(N, 2)`` row/col of pixels scoring above ``threshold`` outside ``ignore``."""
    hot = np.nan_to_num(np.asarray(score, np.float32), nan=-np.inf) > threshold
    if ignore is not None:
        hot &= ~np.asarray(ignore, bool)
    return np.argwhere(hot).astype(np.int64)


def farthest_point_sampling(points: np.ndarray, n: int, rng: np.random.Generator
                            ) -> np.ndarray:
    """``min(n, N)`` of ``points``: a random first one, then each next the point farthest
    (Euclidean, pixels) from all chosen so far."""
    points = np.asarray(points, np.int64).reshape(-1, 2)
    if len(points) == 0 or n <= 0:
        return points[:0]
    chosen = [int(rng.integers(len(points)))]
    p = points.astype(np.float64)
    dist = np.sum((p - p[chosen[0]]) ** 2, axis=1)
    for _ in range(min(n, len(points)) - 1):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break  # every remaining point coincides with a chosen one
        chosen.append(nxt)
        dist = np.minimum(dist, np.sum((p - p[nxt]) ** 2, axis=1))
    return points[chosen]


def kmeans_points(points: np.ndarray, n: int, rng: np.random.Generator, iters: int = 10
                  ) -> np.ndarray:
    """The anomalous point nearest each of ``min(n, N)`` K-means centres (Lloyd's
    iterations from a random subset; a centre may fall between blobs, the prompt must not)."""
    points = np.asarray(points, np.int64).reshape(-1, 2)
    k = min(n, len(points))
    if k <= 0:
        return points[:0]
    p = points.astype(np.float64)
    centres = p[rng.choice(len(p), k, replace=False)]
    for _ in range(iters):
        nearest = np.argmin(((p[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            members = p[nearest == j]
            if len(members):
                centres[j] = members.mean(0)
    snapped = np.argmin(((centres[:, None] - p[None]) ** 2).sum(-1), axis=1)
    return points[np.unique(snapped)]


def random_points(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``min(n, N)`` of ``points`` drawn uniformly without replacement."""
    points = np.asarray(points, np.int64).reshape(-1, 2)
    k = min(n, len(points))
    return points[np.sort(rng.choice(len(points), k, replace=False))] if k else points[:0]


def sample_points(points: np.ndarray, n: int, method: str, rng: np.random.Generator
                  ) -> np.ndarray:
    """Prompts by ``method`` in ``SAMPLERS``."""
    if method == "fps":
        return farthest_point_sampling(points, n, rng)
    if method == "kmeans":
        return kmeans_points(points, n, rng)
    if method == "random":
        return random_points(points, n, rng)
    raise ValueError(f"unknown sampler {method!r}; one of {SAMPLERS}")


def grid_points(shape: tuple[int, int], per_side: int, ignore: np.ndarray | None = None
                ) -> np.ndarray:
    """A ``per_side`` x ``per_side`` grid of cell centres (SAM's dense prompts), minus those
    in ``ignore``."""
    h, w = shape
    rows = ((np.arange(per_side) + 0.5) * h / per_side).astype(np.int64)
    cols = ((np.arange(per_side) + 0.5) * w / per_side).astype(np.int64)
    pts = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
    if ignore is not None:
        pts = pts[~np.asarray(ignore, bool)[pts[:, 0], pts[:, 1]]]
    return pts


def innermost_pixel(mask: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the pixel of a non-empty ``(H, W) bool`` mask farthest from its
    boundary (the image border counts as boundary)."""
    m = np.pad(np.asarray(mask, np.uint8), 1)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)


def oracle_points(instances: np.ndarray) -> np.ndarray:
    """One point per ground-truth instance of a label image ``(H, W)`` (0 none): its pixel
    farthest from the instance's boundary (Table 2's oracle centre sampling)."""
    pts = [innermost_pixel(instances == v) for v in np.unique(instances) if v != 0]
    return np.asarray(pts, np.int64).reshape(-1, 2)


def recentre_points(masks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 2) int64``: each prompt moved to the innermost pixel of the mask it gave
    (:func:`innermost_pixel`; kept where its mask is empty). Our addition to UGainS's
    pipeline: a farthest point lands anywhere on an object, often on its edge, where a small
    prompt model gives a partial mask; prompted again at that mask's centre it segments the
    object as it does from Table 2's oracle centres."""
    points = np.asarray(points, np.int64).reshape(-1, 2).copy()
    for i, m in enumerate(np.asarray(masks, bool)):
        if m.any():
            points[i] = innermost_pixel(m)
    return points


def mask_scores(masks: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``(N,) float32``: the mean anomaly score under each mask (0 for an empty mask); NaN
    scores count as 0."""
    masks = np.asarray(masks, bool)
    if len(masks) == 0:
        return np.zeros(0, np.float32)
    s = np.nan_to_num(np.asarray(score, np.float32), nan=0.0).reshape(-1)
    flat = masks.reshape(len(masks), s.size)
    area = flat.sum(1)
    return np.where(area > 0, flat @ s / np.maximum(area, 1), 0.0).astype(np.float32)


def mask_confidence(probs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,) float32``: the prompt segmenter's mean probability inside each of its thresholded
    masks (0 for an empty mask); ``probs (N, H, W)`` in [0, 1], ``masks (N, H, W) bool``."""
    probs, masks = np.asarray(probs, np.float32), np.asarray(masks, bool)
    if len(masks) == 0:
        return np.zeros(0, np.float32)
    area = masks.reshape(len(masks), -1).sum(1)
    inside = (probs * masks).reshape(len(masks), -1).sum(1)
    return np.where(area > 0, inside / np.maximum(area, 1), 0.0).astype(np.float32)


class SuperpixelSnap:
    """Snaps mask probabilities to one frame's superpixels ``(H, W) int`` (ids 0..S-1): each
    prompt's ``(P, H, W)`` probability averaged over every superpixel, so a mask decoded on a
    stride-4 grid follows the image's edges rather than the grid's (``core.grid_slic`` at a
    4-px cell). Built once per frame, applied to every batch of prompts."""

    def __init__(self, superpixels: np.ndarray) -> None:
        self.index = np.asarray(superpixels, np.int64).ravel()
        n = int(self.index.max()) + 1
        self.count = np.maximum(np.bincount(self.index, minlength=n), 1)
        # one sparse product sums every prompt over every superpixel; float64, as bincount
        # sums, so the masks do not depend on how the sum is computed
        self.member_t = sparse.csr_matrix(
            (np.ones(self.index.size), (self.index, np.arange(self.index.size))),
            shape=(n, self.index.size))

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, np.float32)
        if len(probs) == 0:
            return probs
        flat = probs.reshape(len(probs), -1).T.astype(np.float64)
        means = (self.member_t @ flat).T / self.count
        return np.ascontiguousarray(means[:, self.index].reshape(probs.shape), np.float32)


def instance_scores(masks: np.ndarray, probs: np.ndarray, score: np.ndarray,
                    with_confidence: bool = True) -> np.ndarray:
    """``(N,) float32`` instance scores: the mean anomaly score under each mask (Sec. 3),
    times the segmenter's confidence in the mask (:func:`mask_confidence`) when
    ``with_confidence``. Why the product: several prompts on one foreign object give a whole
    mask and partial ones; the score is hottest on part of an object, so by the mean alone
    NMS keeps the partial mask, and the segmenter is least sure of exactly those (SAM ranks
    its masks by a predicted IoU for the same reason)."""
    s = mask_scores(masks, score)
    return s * mask_confidence(probs, masks) if with_confidence else s


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5
             ) -> np.ndarray:
    """Indices of masks kept by greedy NMS on mask IoU, best score first; empty masks go."""
    masks = np.asarray(masks, bool)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    order = order[masks[order].reshape(len(order), -1).any(1)] if len(order) else order
    if len(order) == 0:
        return order.astype(np.int64)
    iou = mask_iou(masks[order])
    keep: list[int] = []
    for i in range(len(order)):
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return order[keep].astype(np.int64)


def refine_pixel_scores(score: np.ndarray, masks: np.ndarray, scores: np.ndarray
                        ) -> np.ndarray:
    """The ensemble of Sec. 3: the pixel score plus the sum of the scores of the instance
    masks covering the pixel; ``(H, W) float32``, NaN kept."""
    out = np.asarray(score, np.float32).copy()
    if len(masks):
        out += np.tensordot(np.asarray(scores, np.float32), np.asarray(masks, np.float32), 1)
    return out


def connected_components(score: np.ndarray, threshold: float, ignore: np.ndarray | None = None,
                         min_area: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: 8-connected blobs of the thresholded score (outside ``ignore``, at least
    ``min_area`` px) as instance masks, scored by their mean score."""
    hot = np.nan_to_num(np.asarray(score, np.float32), nan=-np.inf) > threshold
    if ignore is not None:
        hot &= ~np.asarray(ignore, bool)
    n, lab = cv2.connectedComponents(hot.astype(np.uint8), connectivity=8)
    masks = lab[None] == np.arange(1, n)[:, None, None]
    masks = masks[masks.reshape(len(masks), lab.size).sum(1) >= min_area]
    return masks, mask_scores(masks, score)


@dataclass
class AnomalyParams:
    """Knobs of :func:`anomaly_instances` (defaults: UGainS's 50 FPS points, NMS 0.5; the
    mask threshold 0.3 and the confidence in the score were chosen on 30 unseen
    ``anomaly_train`` scenes, README "Anomaly instances")."""

    threshold: float = 0.5
    num_points: int = 50
    sampler: str = "fps"
    mask_threshold: float = 0.3
    nms_iou: float = 0.5
    min_area_px: int = 10
    nms: bool = True
    with_confidence: bool = True
    recentre: int = 1  # times each prompt is moved to its mask's centre and segmented again


@dataclass
class AnomalyInstances:
    """``masks (N, H, W) bool`` best first, ``scores (N,) float32`` (:func:`instance_scores`),
    ``refined (H, W) float32`` pixel scores, ``points (P, 2)`` the prompts last segmented
    (after re-centring)."""

    masks: np.ndarray
    scores: np.ndarray
    refined: np.ndarray
    points: np.ndarray


PromptSegmenter = Callable[[np.ndarray], np.ndarray]  # points (P, 2) -> (P, H, W) prob


def anomaly_instances(score: np.ndarray, segment: PromptSegmenter, params: AnomalyParams,
                      rng: np.random.Generator, ignore: np.ndarray | None = None,
                      points: np.ndarray | None = None) -> AnomalyInstances:
    """UGainS's instance branch on one score map: sample prompts from the thresholded
    score (or take ``points``), segment each (re-centred ``params.recentre`` times,
    :func:`recentre_points`), score (:func:`instance_scores`), NMS, and the pixel-score
    ensemble. ``segment`` must decode each prompt independently of the others."""
    if points is None:
        hot = anomalous_points(score, params.threshold, ignore)
        points = sample_points(hot, params.num_points, params.sampler, rng)
    h, w = score.shape
    probs = segment(points) if len(points) else np.zeros((0, h, w), np.float32)
    for _ in range(params.recentre):
        moved_to = recentre_points(probs > params.mask_threshold, points)
        moved = np.flatnonzero((moved_to != points).any(1))
        if len(moved) == 0:
            break
        points, probs = moved_to, probs.copy()
        probs[moved] = segment(points[moved])
    masks = probs > params.mask_threshold
    big = masks.reshape(len(masks), h * w).sum(1) >= params.min_area_px
    masks, probs = masks[big], probs[big]
    scores = instance_scores(masks, probs, score, params.with_confidence)
    keep = mask_nms(masks, scores, params.nms_iou) if params.nms else \
        np.argsort(-scores, kind="stable")
    masks, scores = masks[keep], scores[keep]
    return AnomalyInstances(masks, scores, refine_pixel_scores(score, masks, scores), points)
