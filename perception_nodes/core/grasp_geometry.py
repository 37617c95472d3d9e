"""Geometry of suction grasps on depth images (numpy + OpenCV).

Frames: points and normals in the camera optical frame (m); pixels ``(u, v)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics


def interior_distance(mask: np.ndarray) -> tuple[int, int, float]:
    """``(u, v, distance in px)`` of the pixel of ``mask`` farthest from its border; pixels
    outside the image count as border. Distance 0 for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(u), int(v), float(dist[v, u])


def interior_pixel(mask: np.ndarray) -> tuple[int, int] | None:
    """The pixel ``(u, v)`` of ``mask`` farthest from its border (None for an empty mask)."""
    u, v, dist = interior_distance(mask)
    return (u, v) if dist > 0 else None


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares plane through ``(N, 3)`` points: ``(centroid, unit normal, rms error)``.

    The normal is oriented towards the camera (negative z in the optical frame).
    Raises ValueError with fewer than 3 finite points.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 3:
        raise ValueError(f"need 3 finite points to fit a plane, got {len(pts)}")
    centroid = pts.mean(axis=0)
    _, s, vt = np.linalg.svd(pts - centroid, full_matrices=False)
    normal = vt[-1]
    if normal[2] > 0:
        normal = -normal
    return centroid, normal, float(s[-1] / np.sqrt(len(pts)))


def surface_patch(depth: np.ndarray, intrinsics: PinholeIntrinsics, u: int, v: int,
                  radius_px: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Optical-frame points ``(N, 3)`` of valid depth pixels within ``radius_px`` of (u, v),
    restricted to ``mask`` when given."""
    h, w = depth.shape
    v0, v1, u0, u1 = max(0, v - radius_px), min(h, v + radius_px + 1), max(0, u - radius_px), \
        min(w, u + radius_px + 1)
    vv, uu = np.mgrid[v0:v1, u0:u1]
    keep = ((uu - u) ** 2 + (vv - v) ** 2 <= radius_px**2) & np.isfinite(depth[v0:v1, u0:u1])
    if mask is not None:
        keep &= mask[v0:v1, u0:u1]
    return intrinsics.backproject(uu[keep], vv[keep], depth[v0:v1, u0:u1][keep])


def grasp_pose(point: np.ndarray, normal: np.ndarray, yaw_ref: np.ndarray | None = None
               ) -> np.ndarray:
    """4x4 grasp pose at ``point`` with z along ``normal`` (out of the surface).

    x is the projection of ``yaw_ref`` (default the optical x axis) onto the surface plane,
    so the cup layout keeps a stable orientation.
    """
    z = np.asarray(normal, float) / np.linalg.norm(normal)
    ref = np.array([1.0, 0.0, 0.0]) if yaw_ref is None else np.asarray(yaw_ref, float)
    x = ref - np.dot(ref, z) * z
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, np.cross(z, x), z, point
    return pose


def instances_by_depth(labels: np.ndarray, depth: np.ndarray,
                       min_pixels: int) -> list[tuple[float, int]]:
    """``(median depth m, label)`` of instances with at least ``min_pixels`` valid depth
    pixels, nearest the camera first."""
    ranked = []
    for label in np.unique(labels[labels > 0]):
        d = depth[(labels == label) & np.isfinite(depth)]
        if d.size >= min_pixels:
            ranked.append((float(np.median(d)), int(label)))
    return sorted(ranked)


def topmost_instance(labels: np.ndarray, depth: np.ndarray, min_pixels: int) -> int:
    """Label of the instance nearest the camera (smallest median depth) among those with at
    least ``min_pixels`` valid pixels; 0 when there is none."""
    ranked = instances_by_depth(labels, depth, min_pixels)
    return ranked[0][1] if ranked else 0


def oracle_grasp(labels: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
                 min_pixels: int = 150, cup_radius_m: float = 0.009,
                 max_rms_m: float = 0.003, candidates: int = 4,
                 exclude: frozenset[int] = frozenset()) -> tuple[int, np.ndarray] | None:
    """A grasp from ground-truth labels: the topmost item whose interior fits a cup.

    Among the ``candidates`` instances nearest the camera (median depth, at least
    ``min_pixels`` valid pixels), take the first whose most interior pixel lies farther than
    1.5 cup radii from its border and whose depth patch there is flat (plane rms under
    ``max_rms_m``). Labels in ``exclude`` (grasps that already failed) are skipped.
    Returns ``(label, 4x4 pose in the optical frame)`` or None.
    """
    ranked = [r for r in instances_by_depth(labels, depth, min_pixels) if r[1] not in exclude]
    for median_depth, label in ranked[:candidates]:
        mask = labels == label
        u, v, dist = interior_distance(mask)
        cup_px = cup_radius_m * intrinsics.fx / median_depth
        if dist < 1.5 * cup_px:
            continue
        patch = surface_patch(depth, intrinsics, u, v, max(2, int(cup_px)), mask)
        try:
            centroid, normal, rms = fit_plane(patch)
        except ValueError:
            continue
        if rms <= max_rms_m:
            return label, grasp_pose(centroid, normal)
    return None


def cup_footprint_mask(size: tuple[int, int], intrinsics: PinholeIntrinsics,
                       pose: np.ndarray, cup_offsets_m: np.ndarray, cup_radius_m: float,
                       active: np.ndarray, rim_points: int = 24) -> np.ndarray:
    """``(H, W) uint8`` 1 under the active cups of a gripper at ``pose`` (4x4, optical frame,
    cups in its xy plane at ``cup_offsets_m (n, 2)`` m): each cup's rim circle projected
    into the image and filled (grasp self-supervision Sec. III-A: the grasp mask input)."""
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    angles = np.linspace(0.0, 2.0 * np.pi, rim_points, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1) * cup_radius_m
    offsets = np.asarray(cup_offsets_m, np.float64).reshape(-1, 2)
    for (dx, dy), on in zip(offsets, np.asarray(active, bool), strict=True):
        if not on:
            continue
        local = np.column_stack([ring + [dx, dy], np.zeros(rim_points), np.ones(rim_points)])
        cam = (pose @ local.T).T[:, :3]
        if (cam[:, 2] <= 0).any():
            continue
        uv = intrinsics.project(cam)
        cv2.fillPoly(mask, [np.rint(uv).astype(np.int32)], 1)
    return mask
