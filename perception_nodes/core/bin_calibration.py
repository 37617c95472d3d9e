"""Calibrate a cell from depth frames of its empty (or nearly empty) bin: the bin floor plane
and the workspace polygon inside the walls (numpy + OpenCV).

A camera above a bin sees the bin floor around the image centre, the walls rising from it,
and maybe the surface the bin stands on, lower by the floor's thickness. So the floor is not
"the dominant plane" (the surrounding floor can be larger); it is the plane under the image
centre:

1. RANSAC on the valid pixels of the central region (``centre_share`` of the width and
   height), refined by least squares on its inliers (``core.floor_plane``'s convention:
   unit normal towards the camera, ``d`` the camera's distance, metres).
2. The floor region: pixels within ``band_m`` of the plane (a pixel without depth at its
   nearest measured pixel's height: a dark floor drops out), connected to the central
   region; the walls and rim stand higher and the ground outside lies lower, so neither
   joins it.
3. The workspace polygon: the region's convex outline reduced to at most ``corners``
   corners, shrunk by ``margin_m`` at the floor's depth (cups stay off the wall seams).

Frames follow ``core.conventions``: optical frame, pixels ``(u right, v down)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import (
    fit_floor_plane,
    height_above_plane,
    ransac_plane,
)
from perception_nodes.core.instance_encoding import fill_missing_height


@dataclass(frozen=True)
class BinCalibration:
    """What :func:`calibrate_bin` measured.

    ``plane`` ``(4,)`` the floor ``(nx, ny, nz, d)``; ``polygon_px`` ``(N, 2)`` the workspace
    corners ``(u, v)`` in pixels; ``rms_m`` the floor points' distance to the plane (rms,
    metres); ``floor_px`` the floor region's pixel count; ``coverage`` the share of pixels
    inside the polygon that have valid depth on the plane; ``width``/``height`` the image
    size the polygon belongs to.
    """

    plane: np.ndarray
    polygon_px: np.ndarray
    rms_m: float
    floor_px: int
    coverage: float
    width: int
    height: int

    def polygon_fractions(self) -> np.ndarray:
        """``(N, 2)`` corners as fractions of the image width and height (the
        ``workspace_polygon`` parameter's form: it holds at any resolution)."""
        return self.polygon_px / np.array([self.width, self.height], float)


def median_depth(frames: list[np.ndarray]) -> np.ndarray:
    """``(H, W) float32`` per-pixel median of depth frames (NaN where no frame measured):
    the sensor's noise and holes averaged away before the fit."""
    stack = np.stack([np.asarray(f, np.float32) for f in frames])
    with np.errstate(all="ignore"):
        valid = np.isfinite(stack).any(axis=0)
        out = np.full(stack.shape[1:], np.nan, np.float32)
        if valid.any():
            out[valid] = np.nanmedian(stack[:, valid], axis=0)
    return out


def calibrate_bin(depth: np.ndarray, intrinsics: PinholeIntrinsics,
                  rng: np.random.Generator | None = None, centre_share: float = 0.3,
                  band_m: float = 0.006, margin_m: float = 0.01, corners: int = 4,
                  iterations: int = 300, max_points: int = 5000) -> BinCalibration:
    """Floor plane and workspace polygon of the empty bin seen in ``depth`` ``(H, W)``
    float32 metres (NaN invalid; e.g. :func:`median_depth` of a few frames).

    Raises:
        ValueError: too few valid pixels in the central region, or no floor region.
    """
    rng = rng or np.random.default_rng(0)
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    points = intrinsics.depth_to_points(depth)
    centre = np.zeros((h, w), bool)
    ch, cw = int(h * centre_share / 2), int(w * centre_share / 2)
    centre[h // 2 - ch:h // 2 + ch + 1, w // 2 - cw:w // 2 + cw + 1] = True
    central = points[centre & np.isfinite(depth)]
    if len(central) < 50:
        raise ValueError(f"only {len(central)} valid depth pixels in the image centre: "
                         "is the bin under the camera, and the depth camera on?")
    sample = central if len(central) <= max_points else \
        central[rng.choice(len(central), max_points, replace=False)]
    a, normal = ransac_plane(sample, rng, iterations, band_m / 2)
    plane = fit_floor_plane(central[np.abs((central - a) @ normal) < band_m / 2])
    height = height_above_plane(depth, intrinsics, plane)
    with np.errstate(invalid="ignore"):
        near = np.abs(height) < band_m
    # a pixel without depth (a dark floor drops out) counts at its nearest measured pixel's
    # height, so holes in the floor join it and holes at a wall's foot do not bridge it
    filled = np.abs(fill_missing_height(height)) < band_m
    count, comp = cv2.connectedComponents(filled.astype(np.uint8), connectivity=4)
    touching = np.unique(comp[centre & near])
    touching = touching[touching > 0]
    if touching.size == 0:
        raise ValueError("no bin floor region around the image centre")
    sizes = np.bincount(comp.ravel(), minlength=count)
    floor = comp == touching[np.argmax(sizes[touching])]
    plane = fit_floor_plane(points[floor & near])  # every floor pixel, not only the centre's
    height = height_above_plane(depth, intrinsics, plane)
    rms = float(np.sqrt(np.nanmean(height[floor & near] ** 2)))
    polygon = _outline(floor, corners)
    f = 0.5 * (intrinsics.fx + intrinsics.fy)
    polygon = _shrink(polygon, margin_m * f / plane[3])
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.rint(polygon).astype(np.int32)], 1)
    inside = inside > 0
    with np.errstate(invalid="ignore"):
        on_plane = np.abs(height) < band_m
    coverage = float((inside & on_plane).sum() / max(int(inside.sum()), 1))
    return BinCalibration(plane, polygon, rms, int(floor.sum()), coverage, w, h)


def _outline(region: np.ndarray, corners: int) -> np.ndarray:
    """``(N <= corners, 2)`` float pixel corners of the convex outline of ``region``."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    perimeter = cv2.arcLength(hull, True)
    approx = hull
    for share in np.linspace(0.005, 0.1, 40):  # the least simplification with few corners
        approx = cv2.approxPolyDP(hull, share * perimeter, True)
        if len(approx) <= corners:
            break
    # pixel-centre outline -> the region's outer edge: half a pixel outwards
    poly = approx.reshape(-1, 2).astype(np.float64)
    return _shrink(poly, -0.5)


def _shrink(polygon: np.ndarray, distance_px: float) -> np.ndarray:
    """``polygon`` (convex, any orientation) with every edge moved ``distance_px`` inwards
    (negative: outwards); corners where the moved edges meet."""
    poly = np.asarray(polygon, np.float64)
    n = len(poly)
    centroid = poly.mean(axis=0)
    lines = []
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        d = q - p
        normal = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-12)
        if (centroid - p) @ normal < 0:
            normal = -normal  # towards the inside
        lines.append((p + normal * distance_px, d))
    out = []
    for i in range(n):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        m = np.array([d1, -d2]).T
        if abs(np.linalg.det(m)) < 1e-12:
            out.append(p2)
            continue
        t = np.linalg.solve(m, p2 - p1)
        out.append(p1 + t[0] * d1)
    return np.array(out)


def plane_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(angle between the normals in degrees, difference of d in metres)`` of two planes."""
    cos = float(np.clip(np.dot(a[:3], b[:3]), -1.0, 1.0))
    return float(np.degrees(np.arccos(cos))), float(abs(a[3] - b[3]))
