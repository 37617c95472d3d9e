"""Grasp-safe regions and ranked suction-grasp candidates (numpy + OpenCV).

Latent-MaskRCNN Sec. V-E: grasp points are chosen to land as many suction cups as possible on a
single object of the segmentation, and double picks fall when that segmentation only claims
what it is confident of. Here a footprint centre (u, v) with gripper yaw theta is *safe* for
instance L when, with the cup layout projected at the depth there:

- the centre cup lies inside L (its disk at least ``edge_margin_px`` from L's border) on a
  near-planar patch (local plane rms and tilt within limits): it seals;
- every other cup either lands on L within the bellows stroke of the centre (sealed when its
  disk is inside L on a planar patch, a harmless leak otherwise), or finds nothing within
  reach under its whole disk (depth beyond the stroke plus a clearance);
- no cup lands on another instance, on pixels the segmentation left unclaimed (a confidence
  mask's doubtful border), on an ignored pixel (anomalies, tray walls) or outside the image.

The cup that would touch something other than L is what lifts a second item, so the
footprint is the whole layout, not only the cups on L. Frames and units follow
``core.conventions``: pixels (u right, v down), depth z in metres, poses in the optical frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import height_above_plane
from perception_nodes.core.grasp_geometry import grasp_pose
from perception_nodes.core.pick_metrics import distinct_instances
from perception_nodes.core.surface import LocalPlanes, local_planes


@dataclass(frozen=True)
class GripperLayout:
    """A multi-cup suction gripper: cup centres in the gripper's xy plane (m), cup radius (m)
    and bellows stroke (m, how far a cup can compress past the first contact)."""

    cup_offsets_m: tuple[tuple[float, float], ...] = (
        (0.0, 0.0), (0.025, 0.025), (-0.025, 0.025), (-0.025, -0.025), (0.025, -0.025))
    cup_radius_m: float = 0.009
    stroke_m: float = 0.012

    def __post_init__(self) -> None:
        if not self.cup_offsets_m or tuple(self.cup_offsets_m[0]) != (0.0, 0.0):
            raise ValueError("the first cup must sit at the gripper centre (0, 0)")
        if self.cup_radius_m <= 0 or self.stroke_m <= 0:
            raise ValueError("cup radius and stroke must be positive")

    @property
    def num_cups(self) -> int:
        return len(self.cup_offsets_m)


@dataclass(frozen=True)
class GraspParams:
    """Limits of :func:`plan_grasps` (defaults suit the simulated cell's camera)."""

    yaw_steps: int = 4  # yaws tried in [0, 90) degrees: the default layout repeats every 90
    yaw_period_deg: float = 90.0
    max_plane_rms_m: float = 0.003  # above the depth noise (about 1.7 mm rms at 0.9 m)
    max_tilt_deg: float = 35.0
    clearance_m: float = 0.005  # a cup off the item clears other surfaces by stroke + this
    edge_margin_px: float = 1.0
    min_confidence: float = 0.0  # pixels whose sample agreement is below are not centres
    stride_px: int = 1  # footprint centres tried every stride pixels
    max_candidates: int = 10
    max_risk: float = 0.5  # candidates whose double-pick risk exceeds this are dropped
    height_scale_m: float = 0.1  # quality halves ~every 7 cm below the topmost candidate
    # False: trust the masks alone, as a planner that only lands cups on one mask does
    # (cups off the mask go unchecked; only a cup on another mask blocks). An ablation.
    check_clearance: bool = True
    # with a floor plane: a pixel counts as an item only this high above the floor (m), so
    # a mask that spills onto the floor (or a segmenter that calls the floor an item) never
    # puts a cup there
    min_height_m: float = 0.01

    def __post_init__(self) -> None:
        if self.yaw_steps < 1 or self.stride_px < 1 or self.max_candidates < 1:
            raise ValueError("yaw_steps, stride_px and max_candidates must be at least 1")
        if not 0.0 <= self.max_risk <= 1.0 or not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("max_risk and min_confidence must lie in [0, 1]")


@dataclass
class GraspCandidate:
    """One ranked grasp: footprint centre pixel, 4x4 pose in the optical frame (z along the
    surface normal, out of the surface; x along the gripper's yaw), quality in [0, 1],
    instance label, expected sealed cups, mean confidence under the sealed cups, double-pick
    risk (share of latent samples in which the sealed cups touch two masks; 0 without
    samples), and each cup's pixel ``(n_cups, 2)`` ``(u, v)`` and expected seal."""

    u: int
    v: int
    pose: np.ndarray
    quality: float
    instance: int
    expected_cups: int
    confidence: float
    risk: float
    yaw_rad: float
    cup_pixels: np.ndarray = field(repr=False)
    cup_sealed: np.ndarray = field(repr=False)


@dataclass
class GraspPlan:
    """``safe_labels (H, W) uint16``: instance label where a safe footprint centre lies (0
    elsewhere); ``candidates``: best first, at most one per instance."""

    safe_labels: np.ndarray
    candidates: list[GraspCandidate]


def interior_distance_map(labels: np.ndarray) -> np.ndarray:
    """``(H, W) float32``: each pixel's distance (px) to the nearest pixel of another label
    or the image border (0 on a region's border pixels, whatever their label)."""
    labels = np.asarray(labels)
    edge = np.ones(labels.shape, bool)
    inner = edge[1:-1, 1:-1]
    core = labels[1:-1, 1:-1]
    inner[:] = ((core != labels[:-2, 1:-1]) | (core != labels[2:, 1:-1])
                | (core != labels[1:-1, :-2]) | (core != labels[1:-1, 2:]))
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def cup_pixel_offsets(layout: GripperLayout, yaw_rad: float) -> np.ndarray:
    """``(n_cups, 2)`` offsets in metres on the image plane ``(along u, along v)`` of a
    top-down gripper at ``yaw_rad``: its x axis ``(cos, sin)``, y = z x x with z towards the
    camera (the frame of :func:`grasp_pose`). Multiply by ``f / z`` for pixels."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    off = np.asarray(layout.cup_offsets_m, np.float64)
    return np.stack([off[:, 0] * c + off[:, 1] * s, off[:, 0] * s - off[:, 1] * c], 1)


def footprint_risk(sample_labels: np.ndarray, points_uv: np.ndarray,
                   image_size: tuple[int, int]) -> float:
    """Share of latent samples in which the pixels ``points_uv (N, 2)`` ``(u, v)`` of an
    image of ``image_size (H, W)`` fall on more than one instance; ``sample_labels (k, h,
    w)`` are the samples' label images on any grid (0 none)."""
    samples = np.asarray(sample_labels)
    if samples.ndim != 3 or len(samples) == 0:
        raise ValueError(f"sample labels must be (k, h, w), got {samples.shape}")
    k, gh, gw = samples.shape
    h, w = image_size
    pts = np.asarray(points_uv, np.int64).reshape(-1, 2)
    gr = np.clip(pts[:, 1] * gh // h, 0, gh - 1)
    gc = np.clip(pts[:, 0] * gw // w, 0, gw - 1)
    return float((distinct_instances(samples[:, gr, gc]) > 1).mean())


def outside_polygon(size: tuple[int, int], polygon_uv: np.ndarray) -> np.ndarray:
    """``(H, W) bool``, True outside the polygon ``(N, 2)`` of pixel ``(u, v)`` corners (the
    workspace, e.g. the tray floor from calibration); all False for an empty polygon."""
    h, w = size
    poly = np.asarray(polygon_uv, np.float64).reshape(-1, 2)
    if len(poly) == 0:
        return np.zeros((h, w), bool)
    if len(poly) < 3:
        raise ValueError(f"a workspace polygon needs 3 corners or none, got {len(poly)}")
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.rint(poly).astype(np.int32)], 1)
    return inside == 0


class WorkspaceMask:
    """Pixels outside a workspace polygon given as ``(N, 2)`` fractions of the image width
    and height (calibration that holds at any resolution), made once per image size; an
    empty polygon leaves every pixel in. ValueError for 1 or 2 corners."""

    def __init__(self, polygon_fractions: np.ndarray) -> None:
        self.polygon = np.asarray(polygon_fractions, np.float64).reshape(-1, 2)
        if 0 < len(self.polygon) < 3:
            raise ValueError(f"a workspace polygon needs 3 corners or none, got "
                             f"{len(self.polygon)}")
        self._masks: dict[tuple[int, int], np.ndarray] = {}
        self._inside: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W) bool``, True outside the polygon."""
        shape = (int(shape[0]), int(shape[1]))
        if shape not in self._masks:
            self._masks[shape] = outside_polygon(shape, self.polygon * [shape[1], shape[0]])
        return self._masks[shape]

    def inside(self, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W) bool``, True inside the polygon (the complement, also made once)."""
        shape = (int(shape[0]), int(shape[1]))
        if shape not in self._inside:
            self._inside[shape] = ~self(shape)
        return self._inside[shape]


# the largest cup radius in pixels a frame is planned with (a 5 MP camera at 0.3 m sees the
# 9 mm cup about 70 px wide)
MAX_CUP_RADIUS_PX = 256


# the columns of a candidate table (grasp/candidate_info)
INFO_COLUMNS = ("quality", "risk", "instance", "expected_cups", "confidence", "u", "v",
                "instance_score")


def candidate_table(candidates: list[GraspCandidate], scores: np.ndarray) -> np.ndarray:
    """``(N, len(INFO_COLUMNS)) float32``, one row per candidate in order, with the
    segmentation's ``scores`` ``(M,)`` of labels 1..M; a single NaN row when there is none
    (an image that still carries the frame's header)."""
    scores = np.asarray(scores).ravel()
    rows = [[c.quality, c.risk, c.instance, c.expected_cups, c.confidence, c.u, c.v,
             scores[c.instance - 1] if c.instance <= len(scores) else np.nan]
            for c in candidates] or [[np.nan] * len(INFO_COLUMNS)]
    return np.asarray(rows, np.float32)


def _disk_kernel(radius_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1,) * 2)


def plan_grasps(labels: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
                layout: GripperLayout | None = None, params: GraspParams | None = None,
                confidence: np.ndarray | None = None, sample_labels: np.ndarray | None = None,
                ignore: np.ndarray | None = None, floor_plane: np.ndarray | None = None
                ) -> GraspPlan:
    """Safe regions and ranked candidates for one frame.

    Args:
        labels: ``(H, W) uint16`` instances (0 none), e.g. confidence masks.
        depth: ``(H, W) float32`` z-depth in metres, NaN invalid, registered to ``labels``.
        intrinsics: the camera of ``depth``.
        layout: the gripper (default five cups, as the simulated cell's).
        params: limits (see :class:`GraspParams`).
        confidence: ``(H, W) float32`` share of samples agreeing with ``labels`` (1 if None).
        sample_labels: ``(k, h, w)`` latent samples' labels on the model grid, for the risk.
        ignore: ``(H, W) bool`` pixels no cup may touch (anomalies, tray walls).
        floor_plane: the calibrated bin floor ``(nx, ny, nz, d)`` in the optical frame, or
            None. With it, only pixels measured at least ``params.min_height_m`` above the
            floor are item (the floor and unknown depth never are): no centre and no sealing
            cup on them.

    Raises:
        ValueError: inputs of different sizes, or a cup wider than ``MAX_CUP_RADIUS_PX`` or
            an eighth of the image at the items' depth (work per frame stays bounded).
    """
    layout, params = layout or GripperLayout(), params or GraspParams()
    labels = np.asarray(labels)
    depth = np.asarray(depth, np.float32)
    h, w = labels.shape
    if depth.shape != (h, w):
        raise ValueError(f"depth {depth.shape} and labels {labels.shape} differ")
    for name, arr in (("confidence", confidence), ("ignore", ignore)):
        if arr is not None and np.shape(arr) != (h, w):
            raise ValueError(f"{name} {np.shape(arr)} and labels {labels.shape} differ")
    ignore = np.zeros((h, w), bool) if ignore is None else np.asarray(ignore, bool)
    conf = np.ones((h, w), np.float32) if confidence is None else \
        np.nan_to_num(np.asarray(confidence, np.float32), nan=0.0)
    finite = np.isfinite(depth) & (depth > 0)
    safe = np.zeros((h, w), np.uint16)
    on_item = (labels > 0) & finite & ~ignore
    if floor_plane is not None:
        with np.errstate(invalid="ignore"):
            on_item &= height_above_plane(depth, intrinsics, floor_plane) >= \
                params.min_height_m
    if not on_item.any():
        return GraspPlan(safe, [])
    f = 0.5 * (intrinsics.fx + intrinsics.fy)
    z_typ = float(np.median(depth[on_item]))
    r_px = max(1, int(round(layout.cup_radius_m * f / z_typ)))
    if r_px > min(MAX_CUP_RADIUS_PX, min(h, w) // 8):
        # the per-pixel windows grow with the cup: bounded work, and no bin camera sees a
        # cup this large (the cup layout would cover most of the image)
        raise ValueError(f"a suction cup is {r_px} px in radius at {z_typ:.3g} m with a "
                         f"{f:.0f} px focal length: more than the "
                         f"{min(MAX_CUP_RADIUS_PX, min(h, w) // 8)} px a {w}x{h} bin view "
                         "allows; check the depth unit and camera_info")
    planes = local_planes(depth, intrinsics, r_px, where=on_item)
    planar = planes.valid & (planes.rms <= params.max_plane_rms_m) & \
        (planes.tilt_deg() <= params.max_tilt_deg)
    interior = interior_distance_map(labels)
    # nearest surface under a cup's disk; invalid depth counts as touching (unknown)
    nearest = cv2.erode(np.where(finite, depth, 0.0).astype(np.float32), _disk_kernel(r_px),
                        borderType=cv2.BORDER_CONSTANT, borderValue=0.0)
    sealable = on_item & planar & (interior > r_px + params.edge_margin_px)
    grid = np.zeros((h, w), bool)
    grid[:: params.stride_px, :: params.stride_px] = True
    cv_, cu = np.nonzero(sealable & grid & (conf >= params.min_confidence))
    if cu.size == 0:
        return GraspPlan(safe, [])
    lab, zc = labels[cv_, cu], depth[cv_, cu]
    scale = f / zc
    yaws = np.deg2rad(params.yaw_period_deg) * np.arange(params.yaw_steps) / params.yaw_steps
    best_cups = np.full(cu.size, -1)
    best_yaw = np.zeros(cu.size, int)
    for y, yaw in enumerate(yaws):
        off = cup_pixel_offsets(layout, yaw)
        qu = np.rint(cu[:, None] + off[None, :, 0] * scale[:, None]).astype(np.int64)
        qv = np.rint(cv_[:, None] + off[None, :, 1] * scale[:, None]).astype(np.int64)
        inside = (qu >= 0) & (qu < w) & (qv >= 0) & (qv < h)
        qu, qv = np.clip(qu, 0, w - 1), np.clip(qv, 0, h - 1)
        zq = depth[qv, qu]
        same = inside & (labels[qv, qu] == lab[:, None]) & on_item[qv, qu] & \
            (np.abs(zq - zc[:, None]) <= layout.stroke_m)
        if params.check_clearance:
            clear = inside & (nearest[qv, qu] >
                              (zc + layout.stroke_m + params.clearance_m)[:, None])
        else:
            clear = inside & (labels[qv, qu] == 0) & ~ignore[qv, qu]
        ok = (same | clear).all(axis=1)
        cups = np.where(ok, (same & sealable[qv, qu]).sum(axis=1), -1)
        better = cups > best_cups
        best_cups[better], best_yaw[better] = cups[better], y
    good = best_cups >= 1
    safe[cv_[good], cu[good]] = lab[good]
    if params.stride_px > 1:
        # each tried centre stands for the stride x stride block that starts at it
        last = params.stride_px - 1
        grown = cv2.dilate(safe, np.ones((params.stride_px,) * 2, np.uint8),
                           anchor=(last, last))
        safe = np.where(grown == labels, grown, 0).astype(np.uint16)
    candidates = _best_per_instance(np.flatnonzero(good), cu, cv_, lab, zc, best_cups,
                                    best_yaw, yaws, (labels, depth, interior), layout, params,
                                    planes, conf, sealable, sample_labels, intrinsics)
    return GraspPlan(safe, candidates)


def _best_per_instance(idx: np.ndarray, cu: np.ndarray, cv_: np.ndarray, lab: np.ndarray,
                       zc: np.ndarray, cups: np.ndarray, yaw_idx: np.ndarray,
                       yaws: np.ndarray, frame: tuple[np.ndarray, np.ndarray, np.ndarray],
                       layout: GripperLayout, params: GraspParams, planes: LocalPlanes,
                       conf: np.ndarray, sealable: np.ndarray,
                       sample_labels: np.ndarray | None, intrinsics: PinholeIntrinsics
                       ) -> list[GraspCandidate]:
    """Per instance the safe centre with most expected cups, then the most interior one;
    scored, risk-gated and ranked."""
    if idx.size == 0:
        return []
    labels, depth, interior = frame
    h, w = labels.shape
    # most cups first, then farthest from the border: lexsort's last key is primary
    order = idx[np.lexsort((-interior[cv_[idx], cu[idx]], -cups[idx], lab[idx]))]
    _, first = np.unique(lab[order], return_index=True)
    chosen = order[first]
    z_top = float(zc[chosen].min())
    f = 0.5 * (intrinsics.fx + intrinsics.fy)
    out = []
    for i in chosen:
        yaw = float(yaws[yaw_idx[i]])
        off = cup_pixel_offsets(layout, yaw) * (f / zc[i])
        pix = np.rint(np.array([cu[i], cv_[i]])[None] + off).astype(np.int64)
        pix[:, 0] = np.clip(pix[:, 0], 0, w - 1)
        pix[:, 1] = np.clip(pix[:, 1], 0, h - 1)
        sealed = sealable[pix[:, 1], pix[:, 0]] & (labels[pix[:, 1], pix[:, 0]] == lab[i]) & \
            (np.abs(depth[pix[:, 1], pix[:, 0]] - zc[i]) <= layout.stroke_m)
        confidence = float(conf[pix[sealed, 1], pix[sealed, 0]].mean())
        risk = 0.0
        if sample_labels is not None:
            r = layout.cup_radius_m * f / zc[i]
            rim = np.array([[0, 0], [r, 0], [-r, 0], [0, r], [0, -r]])
            touch = (pix[sealed][:, None, :] + rim[None]).reshape(-1, 2)
            risk = footprint_risk(sample_labels, np.rint(touch), (h, w))
        if risk > params.max_risk:
            continue
        height = float(np.exp(-(zc[i] - z_top) / params.height_scale_m))
        quality = cups[i] / layout.num_cups * confidence * (1.0 - risk) * height
        point = intrinsics.backproject(cu[i], cv_[i], float(zc[i]))
        normal = planes.normal[cv_[i], cu[i]].astype(np.float64)
        pose = grasp_pose(point, normal, np.array([np.cos(yaw), np.sin(yaw), 0.0]))
        out.append(GraspCandidate(int(cu[i]), int(cv_[i]), pose, float(quality), int(lab[i]),
                                  int(cups[i]), confidence, risk, yaw, pix, sealed))
    out.sort(key=lambda c: -c.quality)
    return out[: params.max_candidates]

