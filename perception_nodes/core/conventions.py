"""Units, dtypes, invalid values and frames, defined once for the whole stack.

Every array that crosses a module boundary follows these conventions:

- colour images: ``(H, W, 3) uint8``, RGB order (``rgb8``);
- depth: ``(H, W) float32`` metres along the optical axis (z-depth, not ray length),
  ``NaN`` where invalid. On the wire also ``16UC1`` millimetres with ``0`` invalid;
- instance labels: ``(H, W) uint16``, ``0`` = no instance, ``1..N`` instances (``mono16``);
- confidence / score images: ``(H, W) float32`` in ``[0, 1]``;
- camera frame: REP 103 optical frame, x right, y down, z forward (into the scene);
- world frame ``world``: z up, origin at the centre of the tray floor's underside, metres.
"""

from __future__ import annotations

import numpy as np

WORLD_FRAME = "world"
CAMERA_FRAME = "camera_color_optical_frame"

BACKGROUND_LABEL = 0
LABEL_DTYPE = np.uint16
DEPTH_DTYPE = np.float32
MM_PER_M = 1000.0


def depth_m_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Convert float metres (NaN invalid) to uint16 millimetres (0 invalid).

    Values that do not fit in uint16 (negative, zero or beyond 65.535 m) become 0 (invalid).
    """
    depth_m = np.asarray(depth_m, dtype=np.float64)
    mm = np.rint(depth_m * MM_PER_M)
    valid = np.isfinite(mm) & (mm > 0) & (mm <= np.iinfo(np.uint16).max)
    out = np.zeros(depth_m.shape, dtype=np.uint16)
    out[valid] = mm[valid].astype(np.uint16)
    return out


def depth_mm_to_m(depth_mm: np.ndarray) -> np.ndarray:
    """Convert uint16 millimetres (0 invalid) to float32 metres (NaN invalid)."""
    depth_mm = np.asarray(depth_mm)
    out = depth_mm.astype(DEPTH_DTYPE) / np.float32(MM_PER_M)
    out[depth_mm == 0] = np.nan
    return out


# depths a bin camera can measure (m); anything else (1 mm, 1e30, a byte-swapped float) is
# invalid rather than geometry: downstream plane fits and surfaces would blow up on it
DEPTH_RANGE_M = (0.05, 20.0)


def invalidate_unmeasurable(depth_m: np.ndarray) -> np.ndarray:
    """``(H, W) float32`` metres with every value outside ``DEPTH_RANGE_M`` made NaN (no
    sensor measures there: invalid, as the sensor's own 0 or NaN); the input itself when
    every value is in range."""
    lo, hi = DEPTH_RANGE_M
    with np.errstate(invalid="ignore"):
        outside = ~((depth_m >= lo) & (depth_m <= hi))
    if not outside.any():
        return depth_m
    return np.where(outside, np.float32(np.nan), depth_m).astype(DEPTH_DTYPE)


def check_image(rgb: np.ndarray) -> None:
    """Raise ValueError unless ``rgb`` is an ``(H, W, 3) uint8`` image."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")


def check_labels(labels: np.ndarray) -> None:
    """Raise ValueError unless ``labels`` is an ``(H, W) uint16`` label image."""
    if labels.dtype != LABEL_DTYPE or labels.ndim != 2:
        raise ValueError(f"expected (H, W) uint16 labels, got {labels.dtype} {labels.shape}")
