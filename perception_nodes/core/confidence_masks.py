"""Post-processing of sampled instance segmentations (numpy only).

From Liu, Mishra, Abbeel, Chen, "Distributional Instance Segmentation" (ICRA 2023),
Latent-MaskRCNN:
p-confidence masks (Sec. IV-A, scored as in Sec. IV-B, Algorithm 1 of the appendix),
Union-NMS (Sec. IV-C, Algorithm 2), and instance label images.

Masks are ``(N, H, W) bool`` (or ``(N, P)`` flattened) with scores ``(N,) float`` in [0, 1];
one *sample* is the set of masks decoded from one latent draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception_nodes.core.grid_slic import grid_superpixels, upsample_grid


@dataclass
class InstancePrediction:
    """Instances of one image: ``masks (N, H, W) bool``, ``scores (N,) float32``, and a
    per-pixel ``confidence (H, W) float32`` in [0, 1] (None when the method has none)."""

    masks: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray | None = None


def _stack(samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray, tuple[int, int]]:
    shapes = {tuple(np.shape(m)[1:]) for m, _ in samples}
    if len(shapes) > 1:
        raise ValueError(f"samples have different image sizes: {shapes}")
    hw = shapes.pop()
    masks = [np.asarray(m, dtype=bool).reshape(len(m), hw[0] * hw[1]) for m, _ in samples]
    scores = [np.asarray(s, dtype=np.float64).reshape(-1) for _, s in samples]
    for m, s in zip(masks, scores, strict=True):
        if len(m) != len(s):
            raise ValueError(f"{len(m)} masks but {len(s)} scores in a sample")
    sample_of = np.concatenate([np.full(len(m), g) for g, m in enumerate(masks)]).astype(int)
    flat = np.concatenate(masks) if masks else np.zeros((0, hw[0] * hw[1]), bool)
    return flat, np.concatenate(scores), sample_of, hw


def confidence_masks(samples: list[tuple[np.ndarray, np.ndarray]], p: float,
                     min_score: float = 0.1, max_instances: int = 100) -> InstancePrediction:
    """Greedy p-confidence masks from ``k`` sampled segmentations (Latent-MaskRCNN, Algorithm 1).

    Each candidate starts from one sampled mask ``m_h``; from each of the ``ceil(k p)``
    samples (``m_h``'s own included) that overlap it most, it takes that sample's mask of
    largest overlap with ``m_h`` outside the pixels already predicted, and intersects them
    (Sec. IV-A: a pixel of the intersection lies inside a sampled mask in at least a share p
    of the samples). Its score is the mean score-weighted IoU with the masks intersected
    (Sec. IV-B). The best-scoring candidate is kept, its pixels excluded, and the search
    repeats while the best score exceeds ``min_score`` (0.1 in Algorithm 1).

    Args:
        samples: ``k`` pairs ``(masks (n_g, H, W) bool, scores (n_g,))``.
        p: confidence requirement in (0, 1].
        min_score: stop when no candidate scores above this.
        max_instances: upper bound on instances.

    Returns:
        Masks (disjoint), scores, and the per-pixel share of samples whose matching mask
        agrees with the published label (for background: the share in which the pixel lies
        in no sampled mask).
    """
    if not samples:
        raise ValueError("need at least one sample")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"confidence requirement p must be in (0, 1], got {p}")
    flat, scores, sample_of, (h, w) = _stack(samples)
    k = len(samples)
    need = max(1, math.ceil(k * p - 1e-9))
    labels = _sample_labels(flat, sample_of, k)
    if labels is not None:  # what decoders give: each sample a partition of the image
        return _confidence_masks_disjoint(labels, np.bincount(sample_of, minlength=k), scores,
                                          need, (h, w), min_score, max_instances)
    area = flat.sum(axis=1)
    by_pixel = np.ascontiguousarray(flat.T)  # (P, T): gathering pixels reads whole rows
    taken = np.zeros(h * w, dtype=bool)
    chosen_masks, chosen_scores = [], []
    # A candidate depends only on the free pixels of its seed mask: after each pick, only
    # seeds that lose pixels are recomputed.
    candidates = {hi: _candidate(hi, flat, by_pixel, taken, scores, sample_of, area, k, need)
                  for hi in range(len(flat))}
    while len(chosen_masks) < max_instances:
        best_hi, best_score = None, min_score
        for hi, cand in candidates.items():
            if cand is not None and cand[0] > best_score:
                best_hi, best_score = hi, cand[0]
        if best_hi is None:
            break
        pixels = candidates[best_hi][1]
        mask = np.zeros(h * w, dtype=bool)
        mask[pixels] = True
        taken |= mask
        chosen_masks.append(mask)
        chosen_scores.append(best_score)
        for hi in np.flatnonzero(by_pixel[pixels].any(axis=0)):
            candidates[int(hi)] = _candidate(int(hi), flat, by_pixel, taken, scores, sample_of,
                                             area, k, need)
    published = np.array(chosen_masks, dtype=bool).reshape(len(chosen_masks), h * w)
    confidence = _agreement(flat, sample_of, k, published).reshape(h, w)
    masks = published.reshape(len(chosen_masks), h, w)
    return InstancePrediction(masks, np.asarray(chosen_scores, np.float32), confidence)


def confidence_masks_from_labels(labels: np.ndarray, scores: list[np.ndarray], p: float,
                                 min_score: float = 0.1, max_instances: int = 100
                                 ) -> InstancePrediction:
    """:func:`confidence_masks` of ``k`` samples given as label images, as decoders give
    them: ``labels (k, H, W)`` integers (0 none, mask ``i`` of sample ``g`` is label
    ``i + 1``) and ``scores[g] (n_g,)``. Same result, without building masks."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or len(labels) != len(scores) or len(labels) == 0:
        raise ValueError(f"need (k, H, W) labels and k score arrays, got {labels.shape} and "
                         f"{len(scores)}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"confidence requirement p must be in (0, 1], got {p}")
    k, h, w = labels.shape
    counts = np.array([len(s) for s in scores])
    flat = labels.reshape(k, h * w).astype(np.int32)
    if flat.min(initial=0) < 0 or (flat.max(axis=1, initial=0) > counts).any():
        raise ValueError("labels must lie in 0..n_g for each sample")
    need = max(1, math.ceil(k * p - 1e-9))
    all_scores = np.concatenate([np.asarray(s, np.float64).reshape(-1) for s in scores])
    return _confidence_masks_disjoint(flat, counts, all_scores, need, (h, w), min_score,
                                      max_instances)


def _sample_labels(flat: np.ndarray, sample_of: np.ndarray, k: int) -> np.ndarray | None:
    """``(k, P) int32`` label image of each sample (mask ``i`` of a sample is label
    ``i + 1``), or None when some sample's masks overlap."""
    labels = np.zeros((k, flat.shape[1]), np.int32)
    for g in range(k):
        in_g = np.flatnonzero(sample_of == g)
        if in_g.size == 0:
            continue
        m = flat[in_g]
        if (m.sum(axis=0) > 1).any():
            return None
        labels[g] = np.where(m.any(axis=0), np.argmax(m, axis=0) + 1, 0)
    return labels


class _LabelSamples:
    """Samples as label images, for overlap counts by ``bincount`` instead of mask sums."""

    def __init__(self, labels: np.ndarray, masks_per_sample: np.ndarray) -> None:
        self.labels = labels
        self.k = labels.shape[0]
        self.width = int(masks_per_sample.max(initial=0)) + 1
        # index of a sample's first mask among all masks (the order of ``scores``)
        self.first = np.concatenate([[0], np.cumsum(masks_per_sample)[:-1]]).astype(int)
        self.shift = (np.arange(self.k) * self.width)[:, None]

    def best_overlaps(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, the label overlapping pixels ``idx`` most and the overlap (0: none)."""
        table = np.bincount((self.labels[:, idx] + self.shift).ravel(),
                            minlength=self.k * self.width).reshape(self.k, self.width)
        table[:, 0] = 0
        best = np.argmax(table, axis=1)
        return best, table[np.arange(self.k), best]


def _candidate_scores(samples: _LabelSamples, own: np.ndarray, area: np.ndarray,
                      scores: np.ndarray, need: int, seed_map: np.ndarray,
                      counted: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Candidate scores of many seeds at once (-inf: no candidate) and their pixels, each
    seed on its pixels where ``counted (k, P)`` holds: one histogram of (seed, sample,
    label) replaces a loop.

    ``own (n,)`` is each seed's sample, ``seed_map (k, P)`` the seed of each sample's pixel.
    Seeds with no counted pixel come out -inf.
    """
    k, width, labels = samples.k, samples.width, samples.labels
    n = len(own)
    g_idx, p_idx = np.nonzero(counted)
    t = seed_map[g_idx, p_idx]
    keys = (t[:, None] * k + np.arange(k)[None, :]) * width + labels[:, p_idx].T
    table = np.bincount(keys.ravel(), minlength=n * k * width).reshape(n, k, width)
    table[:, :, 0] = 0
    best = table.argmax(axis=2)
    overlap = np.take_along_axis(table, best[..., None], 2)[..., 0]
    rows = np.arange(n)[:, None]
    overlap[np.arange(n), own] = -1
    others = np.argsort(-overlap, axis=1, kind="stable")[:, : need - 1]
    valid = (overlap[rows, others] > 0).all(axis=1)
    oth = others[t]
    inside = (labels[oth, p_idx[:, None]] == best[t[:, None], oth]).all(axis=1)
    n_pixels = np.bincount(t[inside], minlength=n).astype(np.float64)
    members = np.concatenate([rows, samples.first[others] + best[rows, others] - 1], axis=1)
    members = np.clip(members, 0, n - 1)  # rows that are not valid are discarded below
    out = (scores[members] * n_pixels[:, None] / area[members]).mean(axis=1)
    out[~valid | (n_pixels == 0)] = -np.inf
    t_in, p_in = t[inside], p_idx[inside]
    order = np.argsort(t_in, kind="stable")
    ends = np.cumsum(n_pixels.astype(np.int64)).tolist()
    p_in = p_in[order]
    pixels = [p_in[a:b] for a, b in zip([0, *ends][:-1], ends, strict=True)]
    return out, pixels


def _confidence_masks_disjoint(labels: np.ndarray, masks_per_sample: np.ndarray,
                               scores: np.ndarray, need: int, hw: tuple[int, int],
                               min_score: float, max_instances: int) -> InstancePrediction:
    """Algorithm 1 exactly as :func:`confidence_masks`, on label images (disjoint masks)."""
    samples = _LabelSamples(labels, masks_per_sample)
    n_seeds = int(masks_per_sample.sum())
    own = np.repeat(np.arange(samples.k), masks_per_sample)
    seed_map = np.where(labels > 0, samples.first[:, None] + labels - 1, n_seeds)
    g_idx, p_idx = np.nonzero(labels > 0)
    seed_of = seed_map[g_idx, p_idx]
    sorted_pixels = p_idx[np.argsort(seed_of, kind="stable")]  # in pixel order within a seed
    ends = np.cumsum(np.bincount(seed_of, minlength=n_seeds)).tolist()
    starts = [0, *ends][:-1]
    seed_pixels = [sorted_pixels[a:b] for a, b in zip(starts, ends, strict=True)]
    area = np.diff(np.asarray([0, *ends], np.float64))
    taken = np.zeros(labels.shape[1], dtype=bool)

    def candidate(hi: int) -> tuple[float, np.ndarray] | None:
        idx = seed_pixels[hi]
        idx = idx[~taken[idx]]
        if idx.size == 0:
            return None
        best, overlap = samples.best_overlaps(idx)
        overlap[own[hi]] = -1
        # samples by decreasing overlap, ties by index (a stable sort, as the mask path)
        others = np.argsort(-overlap, kind="stable")[: need - 1]
        if need > 1 and overlap[others[-1]] <= 0:
            return None
        inside = (labels[others[:, None], idx[None, :]] == best[others][:, None]).all(axis=0)
        n_pixels = int(np.count_nonzero(inside))
        if n_pixels == 0:
            return None
        members = np.concatenate([[hi], samples.first[others] + best[others] - 1])
        return float((scores[members] * n_pixels / area[members]).mean()), idx[inside]

    # First scores from one histogram; after each pick only the seeds that lost pixels are
    # rescored, one by one (a few per pick), and pixels are kept only for the picked.
    cand_score, cand_pixels = _candidate_scores(samples, own, area, scores, need, seed_map,
                                                labels > 0)
    searched = np.ones(n_seeds, dtype=bool)
    if need == samples.k:
        # Every other sample is a member, so seeds with the same pixels (the same instance
        # in several samples, the common case) have the same member set and candidate at
        # every step: search one of each.
        first_of: dict[bytes, int] = {}
        for j, px in enumerate(seed_pixels):
            searched[j] = first_of.setdefault(px.tobytes(), j) == j
        cand_score[~searched] = -np.inf
    h, w = hw
    out = np.zeros(h * w, np.int32)  # published label of each pixel, 0 none
    confidence = np.zeros(h * w, np.float32)
    chosen_scores: list[float] = []
    while len(chosen_scores) < max_instances and n_seeds:
        hi = int(np.argmax(cand_score))
        if not cand_score[hi] > min_score:
            break
        pixels = cand_pixels[hi]
        taken[pixels] = True
        chosen_scores.append(float(cand_score[hi]))
        out[pixels] = len(chosen_scores)
        # agreement: samples whose best-overlapping mask holds the pixel
        best, overlap = samples.best_overlaps(pixels)
        agree = (labels[:, pixels] == best[:, None]) & (overlap > 0)[:, None]
        confidence[pixels] = agree.sum(axis=0)
        hit = np.unique(seed_map[:, pixels])
        hit = hit[hit < n_seeds]
        for j in hit[searched[hit]].tolist():
            cand = candidate(j)
            cand_score[j], cand_pixels[j] = cand if cand else (-np.inf, pixels[:0])
    free = out == 0
    confidence[free] = (labels[:, free] == 0).sum(axis=0)
    published = out[None] == np.arange(1, len(chosen_scores) + 1)[:, None]
    return InstancePrediction(published.reshape(-1, h, w),
                              np.asarray(chosen_scores, np.float32),
                              (confidence / np.float32(samples.k)).reshape(h, w))


def _candidate(hi: int, flat: np.ndarray, by_pixel: np.ndarray, taken: np.ndarray,
               scores: np.ndarray,
               sample_of: np.ndarray, area: np.ndarray, k: int, need: int
               ) -> tuple[float, np.ndarray] | None:
    """``(score, pixel indices)`` of the confidence mask seeded by mask ``hi``, or None."""
    idx = np.flatnonzero(flat[hi] & ~taken)
    if idx.size == 0:
        return None
    pixels = by_pixel[idx]  # (|idx|, T)
    overlap = pixels.sum(axis=0)  # |m_h ∩ m_j \ M| for every mask j
    per_sample = []
    for g in range(k):
        if g == sample_of[hi]:
            continue
        in_g = np.flatnonzero(sample_of == g)
        if in_g.size:
            j = in_g[int(np.argmax(overlap[in_g]))]
            if overlap[j] > 0:
                per_sample.append((overlap[j], j))
    if len(per_sample) < need - 1:
        return None
    per_sample.sort(key=lambda t: -t[0])
    members = [hi] + [j for _, j in per_sample[: need - 1]]
    inside = np.all(pixels[:, members], axis=1)
    n_pixels = int(inside.sum())
    if n_pixels == 0:
        return None
    # c ⊆ m_j, so IoU(c, m_j) = |c| / |m_j|
    return float(np.mean(scores[members] * n_pixels / area[members])), idx[inside]


def _agreement(flat: np.ndarray, sample_of: np.ndarray, k: int, published: np.ndarray
               ) -> np.ndarray:
    """Per pixel, the share of samples agreeing with the published labels: for an instance
    pixel, samples whose best-overlapping mask contains it; for background, samples in which
    no mask contains it."""
    agree = np.zeros(flat.shape[1], dtype=np.float32)
    covered = np.zeros(flat.shape[1], dtype=bool)
    for mask in published:
        covered |= mask
        overlap = flat[:, mask].sum(axis=1)
        for g in range(k):
            in_g = np.flatnonzero(sample_of == g)
            if in_g.size and overlap[in_g].max() > 0:
                agree[mask] += flat[in_g[int(np.argmax(overlap[in_g]))], mask]
    for g in range(k):
        agree[~covered] += ~flat[sample_of == g][:, ~covered].any(axis=0)
    return agree / np.float32(k)


def mask_iou(masks: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(N, N)`` of ``(N, ...)`` boolean masks."""
    masks = np.asarray(masks, dtype=bool)
    flat = masks.reshape(len(masks), int(np.prod(masks.shape[1:]))).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(axis=1)
    union = area[:, None] + area[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def union_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5
              ) -> InstancePrediction:
    """Union-NMS over masks pooled from all samples (Latent-MaskRCNN, Sec. IV-C, Algorithm 2).

    Greedy NMS in score order; each kept mask is replaced by the union of itself and every
    mask it suppressed, keeping its score, so that extents any sample saw are covered.
    """
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(masks) != len(scores):
        raise ValueError(f"{len(masks)} masks but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    iou = mask_iou(masks)
    suppressed = np.zeros(len(masks), dtype=bool)
    out_masks, out_scores = [], []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        union = masks[i].copy()
        for j in order[pos + 1 :]:
            if not suppressed[j] and iou[i, j] > iou_threshold:
                suppressed[j] = True
                union |= masks[j]
        out_masks.append(union)
        out_scores.append(scores[i])
    shape = masks.shape[1:]
    return InstancePrediction(np.array(out_masks, dtype=bool).reshape(-1, *shape),
                              np.asarray(out_scores, np.float32))


def masks_to_labels(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``(H, W) uint16`` labels: instance ``i + 1`` for mask ``i``; where masks overlap the
    higher-scoring one wins."""
    masks = np.asarray(masks, dtype=bool)
    labels = np.zeros(masks.shape[1:], dtype=np.uint16)
    for i in np.argsort(np.asarray(scores), kind="stable"):
        labels[masks[i]] = i + 1
    return labels


def labels_to_masks(labels: np.ndarray) -> np.ndarray:
    """``(N, H, W) bool`` masks of labels ``1..N`` present in a label image, in label order."""
    ids = np.unique(labels[labels > 0])
    return labels[None] == ids[:, None, None]


def resize_prediction(pred: InstancePrediction, size: tuple[int, int]) -> InstancePrediction:
    """Nearest-neighbour resize of masks and confidence to ``size`` ``(H, W)``.

    Post-processing runs on the network's grid, where decoded masks are exact, and only the
    result is brought to image resolution.
    """
    h, w = size
    if pred.masks.shape[1:] == (h, w):
        return pred
    gh, gw = pred.masks.shape[1:]
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    masks = pred.masks[:, rows][:, :, cols]
    conf = None if pred.confidence is None else pred.confidence[rows][:, cols]
    return InstancePrediction(masks, pred.scores, conf)


def upsample_prediction(pred: InstancePrediction, rgb: np.ndarray) -> InstancePrediction:
    """Masks and confidence carried from the network's grid to the image ``rgb`` ``(H, W,
    3) uint8`` by grid-SLIC superpixels that keep the grid (superpixel one-shot Sec.
    III-C), as the segmentation node publishes them; nearest-neighbour (see
    :func:`resize_prediction`) when the image is not a whole number of even cells."""
    superpixels = grid_superpixels(rgb, pred.masks.shape[1:])
    if superpixels is None:
        return resize_prediction(pred, rgb.shape[:2])
    masks = upsample_grid(np.moveaxis(pred.masks, 0, -1), superpixels)
    conf = None if pred.confidence is None else \
        upsample_grid(pred.confidence.astype(np.float32), superpixels)
    return InstancePrediction(np.moveaxis(masks, -1, 0), pred.scores, conf)
