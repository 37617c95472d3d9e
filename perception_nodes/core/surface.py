"""Local surface planes from a depth image (numpy + OpenCV).

Every pixel gets the least-squares plane through the valid points of the square window of
radius ``radius_px`` around it, fitted as z = a x + b y + c (the camera faces the surfaces
it grasps): its unit normal (optical frame, towards the camera) and the rms distance of the
window's points to the plane. Window moments come from box filters and each pixel's plane
from a closed-form 2x2 solve, so the cost is a few image passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics


@dataclass
class LocalPlanes:
    """``normal (H, W, 3) float32`` unit normals in the optical frame with z < 0 (facing the
    camera), ``rms (H, W) float32`` plane residual in metres, ``valid (H, W) bool`` where the
    window held at least ``min_points`` valid depths (normal and rms are NaN elsewhere)."""

    normal: np.ndarray
    rms: np.ndarray
    valid: np.ndarray

    def tilt_deg(self) -> np.ndarray:
        """Angle between each normal and the camera's -z axis, degrees ``(H, W) float32``."""
        return np.degrees(np.arccos(np.clip(-self.normal[..., 2], -1.0, 1.0)))


def local_planes(depth: np.ndarray, intrinsics: PinholeIntrinsics, radius_px: int,
                 where: np.ndarray | None = None, min_points: int = 6) -> LocalPlanes:
    """Planes of ``depth (H, W) float32`` metres (NaN invalid) in windows of
    ``(2 radius_px + 1)^2`` pixels; only pixels where ``where (H, W) bool`` holds (default
    all) are solved."""
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    if radius_px < 1:
        raise ValueError(f"radius_px must be at least 1, got {radius_px}")
    finite = np.isfinite(depth) & (depth > 0)
    points = intrinsics.depth_to_points(np.where(finite, depth, 0.0)).astype(np.float64)
    # float64 moments: a 1 mm residual under 0.9 m depths is 1e-6 of the raw second moment
    ksize = (2 * radius_px + 1, 2 * radius_px + 1)

    def box(img: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(img, cv2.CV_64F, ksize, normalize=False,
                             borderType=cv2.BORDER_CONSTANT)

    weight = finite.astype(np.float64)
    n = box(weight)
    want = n >= min_points
    if where is not None:
        want &= np.asarray(where, bool)
    sums = [box(points[..., i] * weight) for i in range(3)]
    normal = np.full((h, w, 3), np.nan, np.float32)
    rms = np.full((h, w), np.nan, np.float32)
    idx = np.nonzero(want)
    if idx[0].size:
        cnt = n[idx]
        mean = [sm[idx] / cnt for sm in sums]

        def cov(i: int, j: int) -> np.ndarray:
            return box(points[..., i] * points[..., j] * weight)[idx] / cnt - mean[i] * mean[j]

        # regress z on x, y (the camera looks at the surface, tilts stay well under 90
        # degrees): a closed-form 2x2 solve per pixel instead of a 3x3 eigendecomposition
        cxx, cxy, cyy, cxz, cyz, czz = cov(0, 0), cov(0, 1), cov(1, 1), cov(0, 2), \
            cov(1, 2), cov(2, 2)
        det = cxx * cyy - cxy * cxy
        solvable = det > 1e-12 * np.maximum(cxx * cyy, 1e-30)
        det = np.where(solvable, det, 1.0)
        a = (cxz * cyy - cyz * cxy) / det
        b = (cyz * cxx - cxz * cxy) / det
        slope = np.sqrt(1.0 + a * a + b * b)
        residual = np.maximum(czz - a * cxz - b * cyz, 0.0)
        nrm = np.stack([a, b, -np.ones_like(a)], 1) / slope[:, None]
        normal[idx] = np.where(solvable[:, None], nrm, np.nan).astype(np.float32)
        rms[idx] = np.where(solvable, np.sqrt(residual) / slope, np.nan).astype(np.float32)
        want[idx] = solvable
    return LocalPlanes(normal, rms, want)
