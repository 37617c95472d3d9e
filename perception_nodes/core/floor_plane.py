"""The tray floor as a plane in the camera's optical frame: calibrated once per cell.

A plane is ``(nx, ny, nz, d)`` with ``n . X + d = 0`` on it, ``n`` unit and pointing at the
camera (so ``d > 0`` is the camera's distance to the plane, metres). Used by the anomaly
score (what stands on the floor) and by monocular depth (metric scale from the floor).
"""

from __future__ import annotations

import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_geometry import fit_plane


def fit_floor_plane(points: np.ndarray) -> np.ndarray:
    """Least-squares plane ``(nx, ny, nz, d)`` through ``(N, 3)`` camera-frame points (NaN
    rows dropped), normal pointing at the camera: the tray floor from a depth image of the
    empty tray, as a calibration step would measure it. ValueError under 3 valid points."""
    centroid, normal, _ = fit_plane(points)
    d = -float(normal @ centroid)
    return np.array([*normal, d]) if d > 0 else np.array([*-normal, -d])


def ransac_plane(points: np.ndarray, rng: np.random.Generator, iterations: int,
                 inlier_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``(a point on it, unit normal)`` of the plane through 3 of ``points (N, 3)`` that has
    the most points within ``inlier_m``, over ``iterations`` seeded draws.

    Raises:
        ValueError: every draw was degenerate (collinear points).
    """
    best, best_count = None, -1
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal = normal / norm
        count = int((np.abs((points - a) @ normal) < inlier_m).sum())
        if count > best_count:
            best, best_count = (a, normal), count
    if best is None:
        raise ValueError("no plane: the depth points are collinear")
    return best


def parse_plane(text: str) -> np.ndarray:
    """``"nx,ny,nz,d"`` (a parameter's text) -> ``(4,)`` plane; ValueError unless the normal
    is unit and ``d > 0``."""
    plane = np.array([float(v) for v in text.split(",")])
    if plane.shape != (4,) or abs(np.linalg.norm(plane[:3]) - 1.0) > 1e-3 or plane[3] <= 0:
        raise ValueError(f"a plane needs a unit normal and d > 0 as 'nx,ny,nz,d', got {text!r}")
    return plane


def ray_dot_normal(intrinsics: PinholeIntrinsics, plane: np.ndarray,
                   shape: tuple[int, int]) -> np.ndarray:
    """``(H, W) float32`` ``n . ray`` with ``ray = ((u - cx) / fx, (v - cy) / fy, 1)``: a point
    at depth ``z`` on pixel (u, v) is ``z ray``, so ``n . X = z (n . ray)``. Built from one
    row and one column, no ``(H, W, 3)`` ray image."""
    nx, ny, nz = (float(v) for v in plane[:3])
    h, w = shape
    out = ((np.arange(h) - intrinsics.cy) / intrinsics.fy * ny)[:, None] + \
        ((np.arange(w) - intrinsics.cx) / intrinsics.fx * nx)[None, :] + nz
    return out.astype(np.float32)


def height_above_plane(depth: np.ndarray, intrinsics: PinholeIntrinsics, plane: np.ndarray
                       ) -> np.ndarray:
    """``(H, W) float32`` metres of each pixel's point above ``plane``; NaN where depth is
    invalid."""
    depth = np.asarray(depth, np.float32)
    n_ray = ray_dot_normal(intrinsics, plane, depth.shape)
    return (depth * n_ray + np.float32(plane[3])).astype(np.float32)


def plane_depth(intrinsics: PinholeIntrinsics, plane: np.ndarray, shape: tuple[int, int]
                ) -> np.ndarray:
    """``(H, W) float32`` depth (m) at which each pixel's ray meets ``plane``: the empty
    floor's depth image; NaN where the ray misses it (parallel or behind the camera)."""
    n_ray = ray_dot_normal(intrinsics, plane, shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = -np.float32(plane[3]) / n_ray
    return np.where(z > 0, z, np.nan).astype(np.float32)


def share_below_plane(depth: np.ndarray, intrinsics: PinholeIntrinsics, plane: np.ndarray,
                      inside: np.ndarray | None = None, margin_m: float = 0.03) -> float:
    """Share of the valid depth pixels (within ``inside (H, W) bool`` when given) measured
    more than ``margin_m`` metres beyond (below) ``plane``: near 0 for the floor of the cell
    the plane was calibrated in, large when the camera moved or the plane belongs to
    another cell (nothing lies under a bin floor). NaN when no pixel is valid."""
    height = height_above_plane(depth, intrinsics, plane)
    valid = np.isfinite(height)
    if inside is not None:
        valid &= inside
    n = int(valid.sum())
    return float((height[valid] < -margin_m).sum() / n) if n else float("nan")
