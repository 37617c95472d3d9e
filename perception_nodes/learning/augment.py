"""Training augmentation of an RGB(-H) scene: what a new bin, a new light and a new sensor do
to the image, so the models learn the items' shape, not the cell's look.

``basic`` (the models published before 2026-11-30): flips and a brightness gain.
``full`` adds colour jitter (per-channel gain, contrast, saturation), blur, sensor noise, a
zoom with a random crop (another camera height), depth holes (ellipses of missing depth, as
glare and shadows leave them) and depth noise. Everything is drawn from the ``rng`` given,
so a run is reproducible.
"""

from __future__ import annotations

import cv2
import numpy as np

AUGMENTATIONS = ("basic", "full")
ZOOM_RANGE = (1.0, 1.35)       # zoom in only: a zoom out would need pixels the camera lacks
HOLE_COUNT_MAX, HOLE_RADIUS_PX = 6, (3, 18)
DEPTH_NOISE_M = 0.002


def augment_scene(rgb: np.ndarray, labels: np.ndarray, height: np.ndarray | None,
                  rng: np.random.Generator, kind: str = "basic"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Augment one training scene; returns contiguous copies.

    Args:
        rgb: ``(H, W, 3) uint8``.
        labels: ``(H, W)`` instance labels (0 background); resampled nearest.
        height: ``(H, W) float32`` metres above the floor, NaN unknown, or None (RGB models).
        rng: the draw (seed it by scene and epoch).
        kind: one of ``AUGMENTATIONS``.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation {kind!r} is not one of {AUGMENTATIONS}")
    if rng.uniform() < 0.5:
        rgb, labels = rgb[:, ::-1], labels[:, ::-1]
        height = None if height is None else height[:, ::-1]
    if rng.uniform() < 0.5:
        rgb, labels = rgb[::-1], labels[::-1]
        height = None if height is None else height[::-1]
    gain = rng.uniform(0.8, 1.2)
    if kind == "basic":
        rgb = np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return _contiguous(rgb, labels, height)
    if rng.uniform() < 0.5:
        rgb, labels, height = zoom_crop(rgb, labels, height, rng.uniform(*ZOOM_RANGE), rng)
    rgb = jitter_colour(rgb.astype(np.float32), gain, rng)
    if rng.uniform() < 0.3:
        rgb = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.5, 1.5))
    if rng.uniform() < 0.5:
        rgb = rgb + rng.normal(0.0, rng.uniform(1.0, 6.0), rgb.shape).astype(np.float32)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if height is not None:
        height = height + rng.normal(0.0, DEPTH_NOISE_M, height.shape).astype(np.float32)
        if rng.uniform() < 0.5:
            height = punch_holes(height, rng)
    return _contiguous(rgb, labels, height)


def jitter_colour(rgb: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """``(H, W, 3) float32`` with brightness ``gain``, per-channel gains of 0.9..1.1 (white
    balance), contrast 0.7..1.3 about the mean and saturation 0.5..1.5."""
    rgb = rgb * gain * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    mean = rgb.mean()
    rgb = mean + (rgb - mean) * rng.uniform(0.7, 1.3)
    grey = rgb.mean(axis=2, keepdims=True)
    return grey + (rgb - grey) * rng.uniform(0.5, 1.5)


def zoom_crop(rgb: np.ndarray, labels: np.ndarray, height: np.ndarray | None, zoom: float,
              rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Enlarge by ``zoom`` (>= 1) and crop a random window of the original size: the bin
    seen from lower. Height is a distance to the floor, unchanged by the zoom."""
    h, w = labels.shape
    zh, zw = int(round(h * zoom)), int(round(w * zoom))
    top, left = int(rng.integers(0, zh - h + 1)), int(rng.integers(0, zw - w + 1))

    def crop(image: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.resize(image, (zw, zh), interpolation=interpolation)[top:top + h,
                                                                        left:left + w]

    return (crop(np.ascontiguousarray(rgb), cv2.INTER_LINEAR),
            crop(np.ascontiguousarray(labels), cv2.INTER_NEAREST),
            None if height is None else crop(np.ascontiguousarray(height), cv2.INTER_NEAREST))


def punch_holes(height: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``height`` with 1..``HOLE_COUNT_MAX`` random ellipses of missing depth (NaN)."""
    height = np.array(height, np.float32)
    mask = np.zeros(height.shape, np.uint8)
    h, w = height.shape
    for _ in range(int(rng.integers(1, HOLE_COUNT_MAX + 1))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = tuple(int(a) for a in rng.integers(*HOLE_RADIUS_PX, size=2))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    height[mask > 0] = np.nan
    return height


def _contiguous(rgb, labels, height):
    return (np.ascontiguousarray(rgb), np.ascontiguousarray(labels),
            None if height is None else np.ascontiguousarray(height))
