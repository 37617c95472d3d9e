"""Simulated double-pick rate and pickable area of predicted masks (numpy + OpenCV).

Latent-MaskRCNN, Sec. V-D (Fig. 5): the gripper is a circle of fixed radius in pixel space. Circles
are sampled at random; of the ``N`` that lie entirely within one predicted mask, ``D`` also
touch more than one ground-truth instance, and the double-pick rate is ``D / N``. The pickable
area fraction is the area of all predicted masks over the area of all ground-truth masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class PickCircleCounts:
    """Counts of one or more images; add them up, then read the rate and the area share."""

    inside_one_prediction: int = 0  # N
    double_picks: int = 0  # D
    predicted_area: int = 0
    ground_truth_area: int = 0

    def __add__(self, other: PickCircleCounts) -> PickCircleCounts:
        return PickCircleCounts(*(a + b for a, b in zip(self.astuple(), other.astuple(),
                                                         strict=True)))

    def astuple(self) -> tuple[int, int, int, int]:
        return (self.inside_one_prediction, self.double_picks, self.predicted_area,
                self.ground_truth_area)

    @property
    def double_pick_rate(self) -> float:
        return self.double_picks / self.inside_one_prediction if self.inside_one_prediction \
            else float("nan")

    @property
    def pickable_area_fraction(self) -> float:
        return self.predicted_area / self.ground_truth_area if self.ground_truth_area \
            else float("nan")


def distinct_instances(labels: np.ndarray) -> np.ndarray:
    """Per row of ``labels (N, K)`` (instance labels under a gripper footprint, 0 none), how
    many distinct instances it touches: ``(N,) int``."""
    rows = np.sort(np.asarray(labels, np.int64), axis=-1)
    return ((np.diff(rows, axis=-1) != 0) & (rows[..., 1:] > 0)).sum(axis=-1) + \
        (rows[..., 0] > 0)


def disk_offsets(radius_px: int) -> np.ndarray:
    """``(K, 2)`` integer offsets ``(dv, du)`` of the pixels of a disk of ``radius_px``."""
    r = int(radius_px)
    dv, du = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dv**2 + du**2 <= r * r
    return np.stack([dv[keep], du[keep]], axis=1)


def count_pick_circles(pred_masks: np.ndarray, gt_labels: np.ndarray, radius_px: int,
                       num_circles: int, rng: np.random.Generator) -> PickCircleCounts:
    """Sample ``num_circles`` circle centres uniformly over the image and count them.

    Args:
        pred_masks: ``(N, H, W) bool`` predicted instances (may overlap).
        gt_labels: ``(H, W) uint16`` ground truth, 0 = background.
        radius_px: gripper radius in pixels.
        num_circles: circles to sample.
        rng: the sampler (seed it for reproducible numbers).
    """
    pred_masks = np.asarray(pred_masks, dtype=bool).reshape(-1, *gt_labels.shape)
    h, w = gt_labels.shape
    counts = PickCircleCounts(predicted_area=int(pred_masks.any(axis=0).sum()),
                              ground_truth_area=int((gt_labels > 0).sum()))
    if num_circles <= 0 or len(pred_masks) == 0:
        return counts
    offsets = disk_offsets(radius_px)
    # a circle lies within a mask iff its centre is at least the radius from the mask's
    # complement (pixels beyond the image border count as outside)
    inside = np.zeros((len(pred_masks), h, w), dtype=bool)
    for i, mask in enumerate(pred_masks):
        dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2,
                                     cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        inside[i] = dist > radius_px
    v = rng.integers(0, h, num_circles)
    u = rng.integers(0, w, num_circles)
    within_one = inside[:, v, u].sum(axis=0) == 1
    v, u = v[within_one], u[within_one]
    pv = np.clip(v[:, None] + offsets[None, :, 0], 0, h - 1)
    pu = np.clip(u[:, None] + offsets[None, :, 1], 0, w - 1)
    distinct = distinct_instances(gt_labels[pv, pu])
    counts.inside_one_prediction = int(within_one.sum())
    counts.double_picks = int((distinct > 1).sum())
    return counts
