"""A classical point-prompted segmenter: region growing over superpixels from the prompt.

The comparison for the learned prompt model (anomaly issue, UGainS Sec. 3 uses SAM): the
image is cut into grid SLIC superpixels once (``core.grid_slic``); a prompt starts from its
superpixel and absorbs neighbouring superpixels, breadth first, whose mean Lab colour lies
within ``max_lab_distance`` of the seed's and, when a height map is given, that stand on
the tray (``min_height_m``) like the seed does. Images ``(H, W, 3) uint8``; points ``(P, 2)``
row/col; masks ``(P, H, W) bool``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from perception_nodes.core.grid_slic import grid_slic, lab_planes


def superpixel_graph(superpixels: np.ndarray, values: np.ndarray
                     ) -> tuple[np.ndarray, list[set[int]]]:
    """Per-superpixel means ``(n, C)`` of ``values (C, H, W)`` and the 4-neighbour
    adjacency of the ``(H, W)`` superpixel index image (ids 0..n-1)."""
    n = int(superpixels.max()) + 1
    flat = superpixels.ravel()
    count = np.maximum(np.bincount(flat, minlength=n), 1)
    means = np.stack([np.bincount(flat, v.ravel(), minlength=n) / count for v in values], 1)
    pairs = np.concatenate([
        np.stack([superpixels[:, :-1].ravel(), superpixels[:, 1:].ravel()], 1),
        np.stack([superpixels[:-1].ravel(), superpixels[1:].ravel()], 1)])
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    adjacency: list[set[int]] = [set() for _ in range(n)]
    for a, b in pairs:
        adjacency[a].add(int(b))
        adjacency[b].add(int(a))
    return means, adjacency


def grow_regions(rgb: np.ndarray, points: np.ndarray, height: np.ndarray | None = None,
                 max_lab_distance: float = 12.0, min_height_m: float = 0.006, cell: int = 8,
                 max_superpixels: int = 200) -> np.ndarray:
    """One mask per prompt (module docstring); a region stops at ``max_superpixels``."""
    superpixels = grid_slic(rgb, cell)
    values = lab_planes(rgb)
    if height is not None:
        values = np.concatenate([values, np.nan_to_num(height, nan=0.0)[None]])
    means, adjacency = superpixel_graph(superpixels, values)
    points = np.asarray(points, np.int64).reshape(-1, 2)
    masks = np.zeros((len(points), *rgb.shape[:2]), bool)
    for i, (r, c) in enumerate(points):
        seed = int(superpixels[r, c])
        # which superpixels the region may absorb, decided once per prompt
        allowed = np.linalg.norm(means[:, :3] - means[seed, :3], axis=1) <= max_lab_distance
        if height is not None and means[seed, 3] >= min_height_m:
            allowed &= means[:, 3] >= min_height_m
        member = np.zeros(len(means), bool)
        member[seed] = True
        queue, size = deque([seed]), 1
        while queue and size < max_superpixels:
            for nb in adjacency[queue.popleft()]:
                if allowed[nb] and not member[nb]:
                    member[nb] = True
                    queue.append(nb)
                    size += 1
        masks[i] = member[superpixels]
    return masks


def region_grow_segmenter(rgb: np.ndarray, height: np.ndarray | None = None
                          ) -> Callable[[np.ndarray], np.ndarray]:
    """A prompt segmenter of one frame by :func:`grow_regions`: points ``(P, 2)`` -> ``(P, H,
    W) float32`` masks (0 or 1), the interface the learned prompt model offers."""
    return lambda points: grow_regions(rgb, points, height).astype(np.float32)
