"""Instances from grid predictions of the superpixel model (superpixel one-shot, Sec. III-B),
numpy.

The network gives, per grid element, ``P(item)``, ``P(centre)`` and a 32-d embedding.
:func:`cluster_with_centres` is the paper's post-processing: centre confidence above 0.7,
connected components, each component's centre of mass as a centre, "duplicate" centres
closer than delta_a in embedding space removed, then every item element assigned to its
nearest centre in embedding space, rejected beyond a distance. :func:`cluster_all_to_all`
is the baseline without predicted centres (Table I, row 0): an all-to-all distance matrix
of the item elements, linked below a distance, connected components. Grid labels go to
full resolution either through the superpixels (``grid_slic.upsample_grid``) or by plain
bilinear upsampling of each instance's indicator (:func:`bilinear_label_image`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

CENTRE_THRESHOLD = 0.7
DELTA_A = 0.1


@dataclass
class GridInstances:
    """``labels (gh, gw) uint16`` (0 none) and ``scores (N,) float32`` of labels 1..N."""

    labels: np.ndarray
    scores: np.ndarray

    def above(self, score_threshold: float) -> GridInstances:
        """The instances scoring at least ``score_threshold``, renumbered 1..M in order."""
        keep = self.scores >= score_threshold
        if keep.all():
            return self
        renumber = np.zeros(len(self.scores) + 1, np.uint16)
        renumber[1:][keep] = np.arange(1, int(keep.sum()) + 1)
        return GridInstances(renumber[self.labels], self.scores[keep])


def _split_outputs(out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(2 + D, gh, gw)`` network output to P(item), P(centre), ``(gh, gw, D)`` embedding."""
    if out.ndim != 3 or out.shape[0] < 3:
        raise ValueError(f"expected (2 + D, gh, gw) outputs, got {out.shape}")
    return out[0], out[1], np.ascontiguousarray(out[2:].transpose(1, 2, 0))


def _scores(labels: np.ndarray, count: int, fg: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Score of each instance: its centre confidence times its mean P(item)."""
    flat = labels.ravel()
    sums = np.bincount(flat, fg.ravel(), minlength=count + 1)[1:]
    cells = np.maximum(np.bincount(flat, minlength=count + 1)[1:], 1)
    return (peak * sums / cells).astype(np.float32)


def _relabel(labels: np.ndarray, peak: np.ndarray, min_cells: int) -> GridInstances:
    """Drop instances smaller than ``min_cells`` and renumber 1..N."""
    count = len(peak)
    cells = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = cells >= min_cells
    new = np.zeros(count + 1, np.uint16)
    new[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return GridInstances(new[labels], peak[keep])


def cluster_with_centres(out: np.ndarray, fg_threshold: float = 0.5,
                         centre_threshold: float = CENTRE_THRESHOLD,
                         duplicate_distance: float = DELTA_A, reject_distance: float = 0.5,
                         min_cells: int = 2) -> GridInstances:
    """superpixel one-shot's post-processing with predicted centres (Sec. III-B).

    Args:
        out: ``(2 + D, gh, gw) float32`` [P(item), P(centre), embedding].
        fg_threshold: P(item) above which an element belongs to an item.
        centre_threshold: centre confidence threshold (0.7 in the paper).
        duplicate_distance: centres closer than this in embedding space are one (delta_a).
        reject_distance: item elements farther than this from every centre are dropped.
        min_cells: smaller instances are dropped.
    """
    fg, centre, emb = _split_outputs(out)
    item = fg > fg_threshold
    labels = np.zeros(fg.shape, np.uint16)
    blobs = ((centre > centre_threshold) & item).astype(np.uint8)
    n, comp, _, centroids = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    if n <= 1 or not item.any():
        return GridInstances(labels, np.zeros(0, np.float32))
    peaks = np.zeros(n)
    np.maximum.at(peaks, comp.ravel(), centre.ravel())
    # A blob's centre of mass may fall outside a concave blob: take its nearest member.
    ys, xs = np.nonzero(comp)
    ids = comp[ys, xs]
    d2 = (ys - centroids[ids, 1]) ** 2 + (xs - centroids[ids, 0]) ** 2
    order = np.lexsort((d2, ids))
    first = order[np.searchsorted(ids[order], np.arange(1, n))]
    blob_emb = emb[ys[first], xs[first]]  # (n - 1, D), blob i at row i - 1
    centre_emb, centre_peak = [], []
    for i in np.argsort(-peaks[1:], kind="stable") + 1:
        e = blob_emb[i - 1]
        if centre_emb and np.min(np.linalg.norm(np.array(centre_emb) - e, axis=1)) < \
                duplicate_distance:
            continue
        centre_emb.append(e)
        centre_peak.append(peaks[i])
    centres = np.array(centre_emb, np.float32)
    rows, cols = np.nonzero(item)
    d2 = ((emb[rows, cols][:, None, :] - centres[None]) ** 2).sum(-1)
    owner = np.argmin(d2, axis=1)
    ok = d2[np.arange(len(owner)), owner] <= reject_distance**2
    labels[rows[ok], cols[ok]] = owner[ok] + 1
    peak = np.asarray(centre_peak, np.float32)
    inst = _relabel(labels, _scores(labels, len(peak), fg, peak), min_cells)
    return inst


def cluster_all_to_all(out: np.ndarray, fg_threshold: float = 0.5,
                       link_distance: float = 0.5, min_cells: int = 2) -> GridInstances:
    """Baseline without centres: item elements linked when their embeddings are closer than
    ``link_distance`` (all-to-all distance matrix), connected components as instances;
    scored by their mean P(item)."""
    fg, _, emb = _split_outputs(out)
    item = fg > fg_threshold
    labels = np.zeros(fg.shape, np.uint16)
    rows, cols = np.nonzero(item)
    if rows.size == 0:
        return GridInstances(labels, np.zeros(0, np.float32))
    e = emb[rows, cols].astype(np.float32)
    sq = (e * e).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (e @ e.T)
    n, comp = connected_components(csr_matrix(d2 < link_distance**2), directed=False)
    labels[rows, cols] = comp + 1
    ones = np.ones(n, np.float32)
    return _relabel(labels, _scores(labels, n, fg, ones), min_cells)


def bilinear_label_image(grid_labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain upsampling, for comparison with the superpixels: each instance's indicator (and
    the background's) resized bilinearly to ``size`` ``(H, W)``, every pixel taking the
    largest; returns ``(H, W) uint16`` labels."""
    best = np.zeros(size, np.float32)
    out = np.zeros(size, np.uint16)
    for i in range(int(grid_labels.max()) + 1):
        up = cv2.resize((grid_labels == i).astype(np.float32), (size[1], size[0]),
                        interpolation=cv2.INTER_LINEAR)
        better = up > best
        best[better] = up[better]
        out[better] = i
    return out
