"""A classical point-prompted segmenter: region growing over superpixels from the prompt.

The comparison for the learned prompt model (anomaly issue, seed 003 Sec. 3 uses SAM): the
image is cut into grid SLIC superpixels once (``core.grid_slic``); a prompt starts from its
superpixel and absorbs neighbouring superpixels, breadth first, whose mean Lab colour lies
within ``max_lab_distance`` of the seed's and, when a height map is given, that stand on
the tray (``min_height_m``) like the seed does. Images ``(H, W, 3) uint8``; points ``(P, 2)``
row/col; masks ``(P, H, W) bool``.
"""

from __future__ import annotations

from collections import deque

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
        standing = height is not None and means[seed, 3] >= min_height_m
        region, queue = {seed}, deque([seed])
        while queue and len(region) < max_superpixels:
            for nb in adjacency[queue.popleft()]:
                if nb in region:
                    continue
                if np.linalg.norm(means[nb, :3] - means[seed, :3]) > max_lab_distance:
                    continue
                if standing and means[nb, 3] < min_height_m:
                    continue
                region.add(nb)
                queue.append(nb)
        masks[i] = np.isin(superpixels, np.fromiter(region, np.int64))
    return masks
