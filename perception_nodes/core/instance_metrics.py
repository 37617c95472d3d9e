"""Instance segmentation metrics (numpy only), as defined in Latent-MaskRCNN (Sec. V-B, V-C and
the appendix's Metrics): mAP with IoU, max recall at high precision (MR@HP) with
intersection-over-prediction (IoP), and average recall (AR) with intersection-over-ground-
truth (IoG). Matching follows COCO: predictions in score order each take the unmatched ground
truth of highest overlap at or above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COCO_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
HIGH_PRECISION = (0.75, 0.8, 0.85, 0.9, 0.95)
OVERLAPS = ("iou", "iop", "iog")


def overlaps(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """IoU, IoP (``|m∩g|/|m|``) and IoG (``|m∩g|/|g|``) matrices ``(N_pred, N_gt)``."""
    p = np.asarray(pred, dtype=bool).reshape(len(pred), -1).astype(np.float32)
    g = np.asarray(gt, dtype=bool).reshape(len(gt), -1).astype(np.float32)
    inter = p @ g.T
    pa, ga = p.sum(axis=1)[:, None], g.sum(axis=1)[None, :]
    union = pa + ga - inter

    def div(a, b):
        return np.divide(a, b, out=np.zeros_like(inter), where=b > 0)

    return {"iou": div(inter, union), "iop": div(inter, np.broadcast_to(pa, inter.shape)),
            "iog": div(inter, np.broadcast_to(ga, inter.shape))}


def match(scores: np.ndarray, overlap: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy matching: ``(N_pred,) bool`` true positives at ``threshold``."""
    tp = np.zeros(len(scores), dtype=bool)
    free = np.ones(overlap.shape[1], dtype=bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not free.any():
            break
        cand = np.where(free, overlap[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= threshold:
            tp[i], free[j] = True, False
    return tp


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """COCO-style 101-point interpolated AP of pooled predictions."""
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tps = np.cumsum(tp[order])
    fps = np.cumsum(~tp[order])
    recall = tps / num_gt
    precision = tps / np.maximum(tps + fps, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision
    ap = 0.0
    for r in np.linspace(0.0, 1.0, 101):
        idx = np.searchsorted(recall, r, side="left")
        ap += precision[idx] if idx < precision.size else 0.0
    return ap / 101.0


def max_recall_at_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int,
                            min_precision: float) -> float:
    """Largest recall over score thresholds whose precision is at least ``min_precision``
    (0 when no threshold reaches it)."""
    if num_gt == 0 or scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tps = np.cumsum(tp[order])
    precision = tps / np.arange(1, len(order) + 1)
    ok = precision >= min_precision - 1e-12
    return float(tps[ok].max() / num_gt) if ok.any() else 0.0


@dataclass
class InstanceEvaluator:
    """Accumulates images, then reports mAP (IoU), MR@HP (IoP) and AR (IoG)."""

    thresholds: np.ndarray = field(default_factory=lambda: COCO_THRESHOLDS.copy())
    _scores: list[np.ndarray] = field(default_factory=list)
    _tp: dict[tuple[str, float], list[np.ndarray]] = field(default_factory=dict)
    num_gt: int = 0

    def add(self, pred_masks: np.ndarray, pred_scores: np.ndarray, gt_masks: np.ndarray
            ) -> None:
        """One image: predictions ``(N, H, W)`` with scores, ground truth ``(M, H, W)``."""
        scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        ov = overlaps(pred_masks, gt_masks) if len(pred_masks) and len(gt_masks) else None
        thresholds = set(self.thresholds.tolist()) | set(HIGH_PRECISION)
        for kind in OVERLAPS:
            for t in thresholds:
                tp = match(scores, ov[kind], t) if ov is not None else \
                    np.zeros(len(scores), bool)
                self._tp.setdefault((kind, float(t)), []).append(tp)
        self._scores.append(scores)
        self.num_gt += len(gt_masks)

    def _pooled(self, kind: str, t: float) -> tuple[np.ndarray, np.ndarray]:
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        tp = np.concatenate(self._tp.get((kind, float(t)), [np.zeros(0, bool)]))
        return scores, tp

    def mean_ap(self) -> float:
        """mAP over IoU 0.5:0.05:0.95 (COCO)."""
        return float(np.mean([average_precision(*self._pooled("iou", t), self.num_gt)
                              for t in self.thresholds]))

    def ap_at(self, t: float) -> float:
        return average_precision(*self._pooled("iou", t), self.num_gt)

    def mr_at_hp(self, precisions=HIGH_PRECISION, iop_thresholds=HIGH_PRECISION) -> float:
        """MR@HP: mean over precision and IoP thresholds of the max recall (Sec. V-B)."""
        return float(np.mean([max_recall_at_precision(*self._pooled("iop", t), self.num_gt, p)
                              for p in precisions for t in iop_thresholds]))

    def ar_iog(self) -> float:
        """AR with IoG: recall averaged over IoG 0.5:0.05:0.95 (Sec. V-C)."""
        if self.num_gt == 0:
            return float("nan")
        return float(np.mean([self._pooled("iog", t)[1].sum() / self.num_gt
                              for t in self.thresholds]))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` ranking ``positive`` above the rest
    (Mann-Whitney statistic, ties count one half); NaN without both classes.

    Latent-MaskRCNN, Table III: scores of predicted masks predicting ground-truth IoU > 0.5.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_iou(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """``(N_pred,)`` IoU of each prediction with its closest ground-truth mask (0 if none)."""
    if len(pred_masks) == 0 or len(gt_masks) == 0:
        return np.zeros(len(pred_masks))
    return overlaps(pred_masks, gt_masks)["iou"].max(axis=1)


def pixel_average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of ``scores`` for ``positive`` pixels, the area under the
    precision-recall curve as a step sum over distinct scores (UGainS's pAP); NaN without
    positives."""
    scores = np.asarray(scores, np.float64).ravel()
    positive = np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, pos = scores[order], positive[order]
    tps, fps = np.cumsum(pos), np.cumsum(~pos)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # ties form one threshold
    tps, fps = tps[last], fps[last]
    precision = tps / (tps + fps)
    recall_step = np.diff(np.r_[0, tps]) / n_pos
    return float(np.sum(precision * recall_step))


def fpr_at_tpr(scores: np.ndarray, positive: np.ndarray, tpr: float = 0.95) -> float:
    """False-positive rate at the highest threshold that reaches ``tpr`` true-positive rate
    (UGainS's FPR95); NaN without both classes."""
    scores = np.asarray(scores, np.float64).ravel()
    positive = np.asarray(positive, bool).ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, pos = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps, fps = np.cumsum(pos)[last], np.cumsum(~pos)[last]
    reached = np.flatnonzero(tps >= tpr * n_pos)
    return float(fps[reached[0]] / n_neg)


def mean_best_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the instances of label image ``a`` ``(H, W)`` (0 none) of their best IoU with
    label image ``b``'s (NaN when ``a`` has none, 0 when ``b`` has none), from the joint
    histogram of the two: one pass over the pixels, whatever the instance counts (the
    mask-by-mask :func:`best_iou` costs N x M image passes)."""
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    if not (ua > 0).any():
        return float("nan")
    if not (ub > 0).any():
        return 0.0
    joint = np.bincount(ia.ravel() * len(ub) + ib.ravel(),
                        minlength=len(ua) * len(ub)).reshape(len(ua), len(ub))
    inter = joint[ua > 0][:, ub > 0]
    union = joint.sum(1)[ua > 0][:, None] + joint.sum(0)[ub > 0][None, :] - inter
    return float((inter / union).max(axis=1).mean())
