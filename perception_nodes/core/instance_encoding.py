"""The one pre/post-processing path of the segmentation model (numpy + OpenCV).

Training builds its targets with :func:`encode_instances`, export and inference feed images
through :func:`preprocess`, and inference turns the network's outputs back into instances
with :func:`decode_instances`; nothing else converts between images, targets and instances.

The network predicts, on a grid of ``stride`` pixels: a foreground logit, an object-centre
heatmap logit (each instance's centre is its most interior cell, so a suction cup aimed
there lands on the item even when the item is concave), and per-cell offsets ``(dy, dx)`` in
grid cells from the cell to its instance's centre. This is a centre-and-offset decoder in
the spirit of superpixel one-shot's object-centre head, assigning pixels by vote rather than
embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception_nodes.core.confidence_masks import InstancePrediction

IMAGE_MEAN, IMAGE_STD = 0.5, 0.25
# the height channel of RGB-H models: metres above the tray floor in units of 5 cm, clipped at
# 25 cm (taller than any item), so it spans about the range of the normalised colour channels
HEIGHT_UNIT_M, HEIGHT_CLIP_M = 0.05, 0.25
HEATMAP_SIGMA_CELLS = 1.5


def preprocess(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB to the network input ``(1, 3, h, w) float32``.

    ``size`` is the model's ``(h, w)``; the image is resized (area) when it differs.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
    h, w = size
    if rgb.shape[:2] != (h, w):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    x = (rgb.astype(np.float32) / 255.0 - IMAGE_MEAN) / IMAGE_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def fill_missing_height(height: np.ndarray) -> np.ndarray:
    """``(H, W) float32`` height with every non-finite pixel (a depth hole: glare, shadow,
    the sensor's minimum range) given its nearest measured pixel's value, so a hole on an
    item reads as the item and a hole on the floor as the floor; all zeros when nothing is
    measured. Exact nearest (L2) by distance transform: O(H W)."""
    height = np.asarray(height, np.float32)
    bad = ~np.isfinite(height)
    if not bad.any():
        return height
    if bad.all():
        return np.zeros_like(height)
    # each hole pixel learns the label of its nearest zero (= measured) pixel
    _, nearest = cv2.distanceTransformWithLabels(bad.astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    good = ~bad
    values = np.zeros(int(nearest.max()) + 1, np.float32)
    values[nearest[good]] = height[good]
    return np.where(bad, values[nearest], height).astype(np.float32)


def preprocess_height(height: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W) float32`` metres above the tray floor (NaN unknown) to the network's height
    channel ``(1, 1, h, w) float32``: holes filled from their nearest measured pixel
    (:func:`fill_missing_height`), clipped to [0, ``HEIGHT_CLIP_M``] in units of
    ``HEIGHT_UNIT_M``, area resize to ``size``."""
    height = np.asarray(height, np.float32)
    if height.ndim != 2:
        raise ValueError(f"expected an (H, W) height image, got {height.shape}")
    x = np.clip(fill_missing_height(height), 0.0, HEIGHT_CLIP_M)
    h, w = size
    if x.shape != (h, w):
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray((x / HEIGHT_UNIT_M)[None, None].astype(np.float32))


def preprocess_rgbh(rgb: np.ndarray, height: np.ndarray | None, size: tuple[int, int]
                    ) -> np.ndarray:
    """The input of RGB-H models ``(1, 4, h, w) float32``: :func:`preprocess` of the colour
    image and :func:`preprocess_height` of the aligned height image (``(H, W)`` metres)."""
    if height is None:
        raise ValueError("this model reads colour and height above the floor; got no height")
    if np.shape(height) != rgb.shape[:2]:
        raise ValueError(f"height {np.shape(height)} not aligned with the image {rgb.shape}")
    return np.concatenate([preprocess(rgb, size), preprocess_height(height, size)], axis=1)


def network_input(rgb: np.ndarray, height: np.ndarray | None, size: tuple[int, int],
                  channels: int) -> np.ndarray:
    """The input of a model that reads ``channels``: 3, colour (:func:`preprocess`; a
    height given is not used), or 4, colour and height (:func:`preprocess_rgbh`)."""
    if channels == 3:
        return preprocess(rgb, size)
    if channels == 4:
        return preprocess_rgbh(rgb, height, size)
    raise ValueError(f"models read 3 (RGB) or 4 (RGB-H) channels, not {channels}")


def grid_labels(labels: np.ndarray, stride: int) -> np.ndarray:
    """Labels sampled at the centre pixel of each ``stride`` cell: ``(H/stride, W/stride)``."""
    off = stride // 2
    return labels[off::stride, off::stride][: labels.shape[0] // stride,
                                            : labels.shape[1] // stride]


@dataclass
class InstanceTargets:
    """Training targets on the grid: ``fg (h, w) float32``, ``heatmap (h, w) float32`` in
    [0, 1], ``offsets (2, h, w) float32`` (cells; zero off the foreground), and
    ``instance_ids (h, w) int64`` (grid labels, for the encoder's mask pooling)."""

    fg: np.ndarray
    heatmap: np.ndarray
    offsets: np.ndarray
    instance_ids: np.ndarray


def instance_centres(grid: np.ndarray) -> dict[int, tuple[int, int]]:
    """Most interior cell ``(row, col)`` of each instance on the grid."""
    centres = {}
    for label in np.unique(grid[grid > 0]):
        mask = np.pad(grid == label, 1).astype(np.uint8)
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)[1:-1, 1:-1]
        r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
        centres[int(label)] = (int(r), int(c))
    return centres


def encode_instances(labels: np.ndarray, stride: int) -> InstanceTargets:
    """Targets for ``(H, W) uint16`` instance labels (0 = background)."""
    grid = grid_labels(labels, stride).astype(np.int64)
    h, w = grid.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    heatmap = np.zeros((h, w), np.float32)
    offsets = np.zeros((2, h, w), np.float32)
    for label, (r, c) in instance_centres(grid).items():
        g = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * HEATMAP_SIGMA_CELLS**2))
        np.maximum(heatmap, g.astype(np.float32), out=heatmap)
        mask = grid == label
        offsets[0][mask] = r - rows[mask]
        offsets[1][mask] = c - cols[mask]
    return InstanceTargets((grid > 0).astype(np.float32), heatmap, offsets, grid)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def decode_instance_labels(fg_logit: np.ndarray, heatmap_logit: np.ndarray,
                           offsets: np.ndarray, fg_threshold: float = 0.5,
                           centre_threshold: float = 0.3, max_vote_distance: float = 3.0,
                           min_cells: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Instances of one image on the network's grid: ``(h, w) int32`` labels (0 none, 1..N)
    and ``(N,) float32`` scores (peak heatmap probability times the mean foreground
    probability of the instance). Arguments as :func:`decode_instances`."""
    fg = _sigmoid(fg_logit.astype(np.float32))
    heat = _sigmoid(heatmap_logit.astype(np.float32))
    h, w = fg.shape
    peaks = (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat > centre_threshold)
    pr, pc = np.nonzero(peaks)
    grid = np.zeros((h, w), np.int32)
    fg_cells = fg > fg_threshold
    if pr.size == 0 or not fg_cells.any():
        return grid, np.zeros(0, np.float32)
    rows, cols = np.nonzero(fg_cells)
    vote_r = rows + offsets[0][rows, cols]
    vote_c = cols + offsets[1][rows, cols]
    d2 = (vote_r[:, None] - pr[None]) ** 2 + (vote_c[:, None] - pc[None]) ** 2
    owner = np.argmin(d2, axis=1)
    keep = d2[np.arange(len(owner)), owner] <= max_vote_distance**2
    grid[rows[keep], cols[keep]] = owner[keep] + 1
    cells = np.bincount(grid.ravel(), minlength=pr.size + 1)[1:]
    fg_sum = np.bincount(grid.ravel(), fg.ravel(), minlength=pr.size + 1)[1:]
    kept = np.flatnonzero(cells >= min_cells)
    renumber = np.zeros(pr.size + 1, np.int32)
    renumber[kept + 1] = np.arange(1, kept.size + 1)
    scores = (heat[pr[kept], pc[kept]] * fg_sum[kept] / cells[kept]).astype(np.float32)
    return renumber[grid], scores


def decode_instances(fg_logit: np.ndarray, heatmap_logit: np.ndarray, offsets: np.ndarray,
                     image_size: tuple[int, int], fg_threshold: float = 0.5,
                     centre_threshold: float = 0.3, max_vote_distance: float = 3.0,
                     min_cells: int = 2) -> InstancePrediction:
    """Instances of one image from the network's grid outputs.

    Args:
        fg_logit: ``(h, w)`` foreground logits.
        heatmap_logit: ``(h, w)`` centre heatmap logits.
        offsets: ``(2, h, w)`` offsets to the centre, in cells.
        image_size: ``(H, W)`` of the output masks.
        fg_threshold, centre_threshold: probabilities for foreground and centre peaks.
        max_vote_distance: a cell whose vote lands farther (cells) from every peak is dropped.
        min_cells: smaller instances are dropped.

    Returns:
        Masks ``(N, H, W) bool`` (upsampled from the grid, nearest), scores = peak heatmap
        probability times the mean foreground probability of the instance.
    """
    grid, scores = decode_instance_labels(fg_logit, heatmap_logit, offsets, fg_threshold,
                                          centre_threshold, max_vote_distance, min_cells)
    full = grid if grid.shape == tuple(image_size) else \
        cv2.resize(grid, (image_size[1], image_size[0]), interpolation=cv2.INTER_NEAREST)
    masks = full[None] == np.arange(1, len(scores) + 1, dtype=np.int32)[:, None, None]
    return InstancePrediction(masks, scores)
