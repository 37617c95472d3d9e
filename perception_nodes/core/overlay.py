"""Overlay images for people: instance labels blended over the colour image."""

from __future__ import annotations

import cv2
import numpy as np

from perception_nodes.core.conventions import check_image, check_labels


def label_palette(num_labels: int, seed: int = 7) -> np.ndarray:
    """A fixed ``(num_labels + 1, 3) uint8`` RGB palette; row 0 (background) is black."""
    if num_labels == 0:
        return np.zeros((1, 3), np.uint8)
    rng = np.random.default_rng(seed)
    hues = (np.arange(num_labels) * 0.61803398875 + rng.uniform()) % 1.0
    hsv = np.stack([hues * 179, np.full(num_labels, 200), np.full(num_labels, 255)], 1)
    rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return np.vstack([np.zeros((1, 3), np.uint8), rgb])


def draw_label_overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend coloured instances over ``rgb`` and outline each instance.

    Args:
        rgb: ``(H, W, 3) uint8`` colour image.
        labels: ``(H, W) uint16`` instance labels, 0 = none.
        alpha: opacity of the instance colour in ``[0, 1]``.

    Returns:
        A new ``(H, W, 3) uint8`` RGB image.
    """
    check_image(rgb)
    check_labels(labels)
    if rgb.shape[:2] != labels.shape:
        raise ValueError(f"image {rgb.shape[:2]} and labels {labels.shape} differ in size")
    palette = label_palette(int(labels.max()) if labels.size else 0)
    colour = palette[labels]
    out = rgb.copy()
    fg = labels > 0
    out[fg] = (rgb[fg] * (1.0 - alpha) + colour[fg] * alpha).astype(np.uint8)
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges & fg] = 255
    return out


def draw_points(rgb: np.ndarray, pixels: np.ndarray, colour: tuple = (255, 0, 0)) -> np.ndarray:
    """Draw crosshair markers at ``(N, 2)`` pixel positions ``(u, v)`` on a copy of ``rgb``."""
    out = np.ascontiguousarray(rgb.copy())
    for u, v in np.asarray(pixels, dtype=float).reshape(-1, 2):
        if np.isfinite(u) and np.isfinite(v):
            cv2.drawMarker(out, (int(round(u)), int(round(v))), colour, cv2.MARKER_CROSS, 14, 2)
    return out
