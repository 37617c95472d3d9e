"""Training-free instances from depth: what stands on the bin floor, cut at height steps.

The reference every learned mode must beat (``mode: geometric``), and a mode a cell can run
on day one: height above the calibrated floor plane (or one fitted per frame by RANSAC),
foreground where something stands at least ``min_height_m`` above it, cuts where the height
steps between neighbouring pixels by more than the surface could slope, seeds as the
connected components of what the cuts leave, and a watershed over the height that grows the
seeds back over the whole foreground. It cannot split items packed flush at one height (no
step between them); that is where a learned model has to earn its place.

Arrays: depth ``(H, W) float32`` metres, NaN invalid; planes ``(nx, ny, nz, d)`` in the
camera optical frame with the normal towards the camera (core/floor_plane.py); labels
``(H, W) uint16``, 0 none.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import fit_floor_plane, height_above_plane, ransac_plane


@dataclass(frozen=True)
class GeometricParams:
    """Knobs of :func:`segment_geometric` (metres unless stated)."""

    # above the sensors' noise on the floor; 12 mm was best of 6-12 mm on 40 `val` scenes
    # (flat packs thinner than that are missed)
    min_height_m: float = 0.012
    step_m: float = 0.004  # a height step between neighbours beyond what a slope explains...
    max_slope: float = 1.5  # ...which rises at most this much per metre across (56 degrees)
    min_area_px: int = 20  # seeds and instances smaller than this are dropped
    hole_px: int = 2  # depth holes this wide inside a surface are bridged


def ransac_floor_plane(depth: np.ndarray, intrinsics: PinholeIntrinsics,
                       rng: np.random.Generator, iterations: int = 200,
                       inlier_m: float = 0.004, stride: int = 4,
                       max_points: int = 4000) -> np.ndarray:
    """The dominant plane facing the camera, from one frame: RANSAC over every ``stride``-th
    valid pixel (hypotheses scored on at most ``max_points`` of them, so a frame costs the
    same at any resolution), refined by least squares on its inliers among all. For a cell
    without calibration; a calibrated plane is better (a packed bin's tops are a plane too,
    and a bin standing on a wider floor shows that floor too).

    Raises:
        ValueError: fewer than 3 valid depth pixels.
    """
    points = intrinsics.depth_to_points(depth)[::stride, ::stride].reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 3:
        raise ValueError("no plane: fewer than 3 valid depth pixels")
    scored = points if len(points) <= max_points else \
        points[rng.choice(len(points), max_points, replace=False)]
    a, normal = ransac_plane(scored, rng, iterations, inlier_m)
    inliers = points[np.abs((points - a) @ normal) < inlier_m]
    return fit_floor_plane(inliers)


def height_steps(height: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
                 params: GeometricParams) -> np.ndarray:
    """``(H, W) bool``: pixels whose 5x5 neighbourhood spans more height than
    ``step_m + max_slope * 2 * pitch`` (pitch = depth / fx, two pixels either side), i.e. more
    than the surface could rise across it: the edges between stacked or touching items of
    different heights. A window, not a neighbour's difference, because stereo and ToF spread
    an edge over two or three pixels. The height is median-filtered first (sensor noise);
    NaN pixels take their neighbourhood's values and cut nothing themselves."""
    measured = np.isfinite(height)
    h = np.where(measured, height, 0.0).astype(np.float32)
    if (~measured).any():  # holes take a nearby measured height, not the floor's zero
        h = _fill_holes(h, measured)
    h = cv2.medianBlur(h, 5)
    pitch = np.where(measured, depth, np.nanmedian(depth)) / np.float32(intrinsics.fx)
    # height change per pixel (Sobel over 3x3: a ramp spread by the sensor still counts)
    gx = cv2.Sobel(h, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(h, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    rise = np.sqrt(gx * gx + gy * gy)
    k = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(h, k) - cv2.erode(h, k)
    steep = rise > np.float32(params.max_slope) * pitch
    step = spread > np.float32(params.step_m) + np.float32(params.max_slope) * 2.0 * pitch
    return (steep | step) & measured


def _fill_holes(h: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Invalid pixels take the largest measured height in a 5x5 window (repeated twice),
    so a hole on an item reads as the item, not as the floor."""
    h = h.copy()
    for _ in range(2):
        grown = cv2.dilate(h, np.ones((5, 5), np.uint8))
        h = np.where(measured, h, grown)
    return h


def segment_geometric(depth: np.ndarray, intrinsics: PinholeIntrinsics, plane: np.ndarray,
                      params: GeometricParams | None = None,
                      workspace: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Instances of what stands on the floor ``plane``.

    Args:
        depth: ``(H, W) float32`` metres, NaN invalid.
        intrinsics: the depth image's camera.
        plane: the floor ``(nx, ny, nz, d)`` (calibrated, or :func:`ransac_floor_plane`).
        params: thresholds.
        workspace: ``(H, W) bool`` where items may be (inside the bin's walls); None: all.

    Returns:
        ``(labels, scores)``: ``(H, W) uint16`` instances 1..N (0 none) and ``(N,) float32``
        scores in [0, 1]: the share of the instance its seed covered (a surface the cuts
        left whole) times the share of its pixels with measured depth.
    """
    params = params or GeometricParams()
    depth = np.asarray(depth, np.float32)
    height = height_above_plane(depth, intrinsics, plane)
    measured = np.isfinite(height)
    fg = measured & (height > params.min_height_m)
    if workspace is not None:
        fg &= workspace
    # bridge small depth holes inside a surface (dark spots, glints) without joining items
    if params.hole_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * params.hole_px + 1,) * 2)
        closed = cv2.morphologyEx(fg.view(np.uint8), cv2.MORPH_CLOSE, k).view(bool)
        fg |= closed & ~measured & (workspace if workspace is not None else True)
    steps = height_steps(height, depth, intrinsics, params)
    cores = fg & ~steps & measured
    n, seeds, stats, _ = cv2.connectedComponentsWithStats(cores.view(np.uint8), connectivity=4)
    keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= params.min_area_px) + 1
    if keep.size == 0:
        return np.zeros(depth.shape, np.uint16), np.zeros(0, np.float32)
    lut = np.zeros(n, np.int32)
    lut[keep] = np.arange(1, keep.size + 1)
    markers = lut[seeds]
    background = keep.size + 1
    markers[~fg] = background
    # flood the height landscape from the seeds: boundaries settle on the height steps
    h8 = np.clip(np.nan_to_num(height, nan=0.0) / 0.2 * 255.0, 0, 255).astype(np.uint8)
    grown = cv2.watershed(cv2.merge([h8, h8, h8]), markers.astype(np.int32))
    labels = np.where((grown > 0) & (grown < background) & fg, grown, 0).astype(np.uint16)
    # the watershed draws its borders (-1) on pixels of the foreground too: give each to a
    # neighbouring instance, so masks keep their outline
    border = (grown == -1) & fg
    labels[border] = cv2.dilate(labels, np.ones((3, 3), np.uint8))[border]
    return _drop_small(labels, markers, measured, params.min_area_px)


def _drop_small(labels: np.ndarray, markers: np.ndarray, measured: np.ndarray,
                min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Instances of at least ``min_area`` pixels, renumbered 1..N, with their scores."""
    count = int(labels.max())
    area = np.bincount(labels.ravel(), minlength=count + 1)
    core = np.bincount(markers.ravel()[labels.ravel() > 0],
                       weights=(markers.ravel() == labels.ravel())[labels.ravel() > 0],
                       minlength=count + 2)[: count + 1]
    valid = np.bincount(labels.ravel(), weights=measured.ravel(), minlength=count + 1)
    keep = np.flatnonzero(area[1:] >= min_area) + 1
    lut = np.zeros(count + 1, np.uint16)
    lut[keep] = np.arange(1, keep.size + 1)
    scores = (core[keep] / area[keep]) * (valid[keep] / area[keep])
    return lut[labels], np.clip(scores, 0.0, 1.0).astype(np.float32)


def floor_plane_from_pose(camera_pose: np.ndarray, floor_height_m: float) -> np.ndarray:
    """The horizontal floor ``z = floor_height_m`` of the world as ``(nx, ny, nz, d)`` in the
    optical frame of a camera at ``camera_pose`` (``T_world_camera``): a simulated cell's
    calibration, exact."""
    rot, eye = camera_pose[:3, :3], camera_pose[:3, 3]
    normal = rot.T @ np.array([0.0, 0.0, 1.0])
    point = rot.T @ (np.array([0.0, 0.0, floor_height_m]) - eye)
    d = -float(normal @ point)
    return np.array([*normal, d]) if d > 0 else np.array([*-normal, -d])
