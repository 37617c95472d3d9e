"""Grid-preserving superpixels: one SLIC assignment step against a fixed grid of centres.

superpixel one-shot, Sec. III-C: SLIC starts from cluster centres on a regular grid of
spacing ``k``;
running a single assignment iteration *without* updating the centres leaves every
superpixel tied to one cell of the grid, so a network's output on that grid (output stride
``k``) can be upsampled one-to-many along the image's own colour boundaries.

Centre colours are the mean Lab colour of each ``k x k`` cell (gSLICr samples one pixel;
the mean is less sensitive to sensor noise), and they are not updated. As in SLIC, a pixel
only considers centres within ``k`` of it along each axis, which are exactly the four
corners of the pixel's cell of the *dual* grid (cells of size ``k`` whose corners are the
centres); so the search is four vectorised passes over the image, not a per-pixel loop.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def grid_shape(height: int, width: int, cell: int) -> tuple[int, int]:
    """Rows and columns of the centre grid for an image (cells at the border may be partial)."""
    return -(-height // cell), -(-width // cell)


def lab_planes(rgb: np.ndarray) -> np.ndarray:
    """``(3, H, W) float32`` CIE Lab of an ``(H, W, 3) uint8`` RGB image, L in 0..100, a and
    b in -128..127 (OpenCV's 8-bit conversion, rescaled: 6x faster than its float one)."""
    lab = np.stack([p.astype(np.float32) for p in cv2.split(cv2.cvtColor(rgb,
                                                                          cv2.COLOR_RGB2LAB))])
    lab[0] *= 100.0 / 255.0
    lab[1:] -= 128.0
    return lab


@functools.lru_cache(maxsize=16)
def _spatial_term(cell: int, compactness: float, bh: int, bw: int, a: int, b: int
                  ) -> np.ndarray:
    """``(m / k)^2 d_xy^2`` from every pixel of the dual grid to its block's corner (a, b)."""
    half = cell // 2
    u = np.arange(cell, dtype=np.float32)
    # Offsets of a block's pixels from its upper / left (0) and lower / right (1) centres.
    offsets = (u + half - (cell - 1) / 2.0, u - half - (cell - 1) / 2.0)
    block = (compactness / cell) ** 2 * (offsets[a][:, None] ** 2 + offsets[b][None, :] ** 2)
    return np.tile(block.astype(np.float32), (bh, bw))


def grid_slic(rgb: np.ndarray, cell: int = 8, compactness: float = 10.0) -> np.ndarray:
    """Superpixels that keep the grid (superpixel one-shot, Sec. III-C).

    Args:
        rgb: ``(H, W, 3) uint8`` image.
        cell: grid spacing ``k`` in pixels (the network's output stride), even, >= 2.
        compactness: SLIC's ``m``: weight of spatial against Lab colour distance
            (``D^2 = d_lab^2 + (m / k)^2 d_xy^2``, Lab with L in 0..100).

    Returns:
        ``(H, W) int32`` superpixel index ``gy * gw + gx`` of the grid cell each pixel joins
        (``gh, gw = grid_shape(H, W, cell)``); every index lies within one cell of the
        pixel's own cell.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if cell < 2 or cell % 2:
        raise ValueError(f"cell must be even and >= 2, got {cell}")
    h, w = rgb.shape[:2]
    gh, gw = grid_shape(h, w, cell)
    half = cell // 2
    # The dual grid: block (i, j) spans the pixels between centres (i-1, j-1) and (i, j).
    bh, bw = gh + 1, gw + 1
    padded = cv2.copyMakeBorder(rgb, half, bh * cell - h - half, half, bw * cell - w - half,
                                cv2.BORDER_REPLICATE)
    lab = lab_planes(padded)
    # Centre colours: mean Lab of each cell (INTER_AREA at an integer factor is the exact
    # block mean); partial border cells see replicated edges.
    inner = lab[:, half : half + gh * cell, half : half + gw * cell]
    centres = [cv2.resize(plane, (gw, gh), interpolation=cv2.INTER_AREA) for plane in inner]
    # Each centre colour painted over its cell, with a ring of one cell around the grid, so
    # that corner (a, b) of every dual block is one shifted view of it.
    painted = [cv2.resize(np.pad(c, 1, mode="edge"), ((gw + 2) * cell, (gh + 2) * cell),
                          interpolation=cv2.INTER_NEAREST) for c in centres]
    size = (bh * cell, bw * cell)
    # Argmin over the four corners without masks: a distance is a non-negative float32, so
    # its bits order like an int32; the two lowest mantissa bits (a relative 2e-7) are
    # replaced by the corner's index, and a running integer minimum keeps the winner's.
    best = np.full(size, np.iinfo(np.int32).max, np.int32)
    tmp = np.empty(size, np.float32)
    dist = np.empty(size, np.float32)
    key = dist.view(np.int32)
    for corner in range(4):
        a, b = divmod(corner, 2)
        np.copyto(dist, _spatial_term(cell, compactness, bh, bw, a, b))
        for c in range(3):
            view = painted[c][a * cell : a * cell + size[0], b * cell : b * cell + size[1]]
            np.subtract(lab[c], view, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            dist += tmp
        # Corners outside the grid (the padding ring) are never chosen.
        if a == 0:
            dist[:cell] = np.inf
        else:
            dist[-cell:] = np.inf
        if b == 0:
            dist[:, :cell] = np.inf
        else:
            dist[:, -cell:] = np.inf
        np.bitwise_and(key, ~3, out=key)
        np.bitwise_or(key, corner, out=key)
        np.minimum(best, key, out=best)
    crop = best[half : half + h, half : half + w]
    corner_a = np.right_shift(crop, 1) & 1
    corner_b = crop & 1
    # Corner (a, b) of dual block (i, j) is grid cell (i - 1 + a, j - 1 + b).
    rows = (np.arange(h) + half) // cell - 1
    cols = (np.arange(w) + half) // cell - 1
    base = (rows[:, None] * gw + cols[None, :]).astype(np.int32)
    return base + corner_a * gw + corner_b


def grid_superpixels(rgb: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray | None:
    """Grid-SLIC superpixels of ``rgb`` for a network grid of ``grid_hw`` cells, or None
    when the image is not a whole number of even cells across (then the grid can only be
    resized, not carried by superpixels)."""
    h, w = rgb.shape[:2]
    gh, gw = grid_hw
    cell = h // gh
    if cell < 2 or cell % 2 or (h, w) != (gh * cell, gw * cell):
        return None
    return grid_slic(rgb, cell)


def upsample_grid(grid_values: np.ndarray, superpixels: np.ndarray) -> np.ndarray:
    """Full-resolution values from a grid through the one-to-many superpixel mapping.

    Args:
        grid_values: ``(gh, gw, ...)`` per-cell values (labels, scores, ...).
        superpixels: ``(H, W) int32`` from :func:`grid_slic` with the same grid.

    Returns:
        ``(H, W, ...)`` array of ``grid_values``' dtype.
    """
    flat = grid_values.reshape(grid_values.shape[0] * grid_values.shape[1],
                               *grid_values.shape[2:])
    return flat[superpixels]


def superpixel_targets(labels: np.ndarray, superpixels: np.ndarray,
                       grid: tuple[int, int]) -> np.ndarray:
    """Grid targets from full-resolution labels: each cell takes the label at the centre of
    mass of its superpixel (superpixel one-shot, Sec. III-D and Fig. 4); cells whose
    superpixel is empty
    take the label at their own centre.

    Args:
        labels: ``(H, W)`` integer labels.
        superpixels: ``(H, W) int32`` from :func:`grid_slic`.
        grid: ``(gh, gw)``.
    """
    h, w = labels.shape
    gh, gw = grid
    n = gh * gw
    ys, xs = np.mgrid[0:h, 0:w]
    flat = superpixels.ravel()
    count = np.bincount(flat, minlength=n).astype(np.float64)
    cy = np.bincount(flat, ys.ravel(), minlength=n)
    cx = np.bincount(flat, xs.ravel(), minlength=n)
    cell_h, cell_w = h / gh, w / gw
    own_y = (np.arange(gh)[:, None] + 0.5) * cell_h * np.ones((1, gw))
    own_x = np.ones((gh, 1)) * (np.arange(gw)[None, :] + 0.5) * cell_w
    empty = count == 0
    cy = np.where(empty, own_y.ravel(), cy / np.maximum(count, 1))
    cx = np.where(empty, own_x.ravel(), cx / np.maximum(count, 1))
    iy = np.clip(np.round(cy).astype(int), 0, h - 1)
    ix = np.clip(np.round(cx).astype(int), 0, w - 1)
    return labels[iy, ix].reshape(gh, gw)
