"""The geometric mode at run time: one RGB-D frame to what the segmentation node publishes.

No model: ``core.geometric`` on the frame's depth, with the cell's calibrated floor plane
(or a plane fitted to each frame when the cell has none) and its workspace polygon. The same
floor gives RGB-H models their height channel (:func:`height_for_frame`).
"""

from __future__ import annotations

import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import height_above_plane
from perception_nodes.core.geometric import (
    GeometricParams,
    ransac_floor_plane,
    segment_geometric,
)
from perception_nodes.core.grasp_regions import WorkspaceMask
from perception_nodes.inference.segmenter import Segmentation


def floor_for_frame(depth: np.ndarray, intrinsics: PinholeIntrinsics,
                    plane: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """The calibrated floor ``plane`` ``(nx, ny, nz, d)`` (optical frame), or, when the cell
    has none (None), one fitted to this frame's depth by seeded RANSAC."""
    if plane is not None:
        return plane
    return ransac_floor_plane(depth, intrinsics, np.random.default_rng(seed))


def height_for_frame(depth: np.ndarray, intrinsics: PinholeIntrinsics,
                     plane: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """``(H, W) float32`` metres above :func:`floor_for_frame` (NaN where depth is
    invalid): the height channel of RGB-H models."""
    return height_above_plane(depth, intrinsics, floor_for_frame(depth, intrinsics, plane,
                                                                 seed))


class GeometricSegmenter:
    """``depth, intrinsics -> Segmentation`` (one hypothesis: confidence 1, no samples).

    Args:
        plane: the calibrated floor ``(nx, ny, nz, d)``, or None to fit one per frame.
        workspace: outside-the-bin mask of the calibration (an empty polygon: none).
        params: the segmenter's thresholds.
        seed: seeds the per-frame plane fit (replays give identical masks).
    """

    def __init__(self, plane: np.ndarray | None, workspace: WorkspaceMask,
                 params: GeometricParams | None = None, seed: int = 0) -> None:
        self.plane, self.workspace = plane, workspace
        self.params = params or GeometricParams()
        self.seed = seed

    def __call__(self, depth: np.ndarray, intrinsics: PinholeIntrinsics,
                 plane: np.ndarray | None = None, inside: np.ndarray | None = None
                 ) -> Segmentation:
        """One frame; ``plane`` and ``inside`` (``(H, W) bool`` workspace) override the
        calibration given at construction (a camera that moves with every scene)."""
        plane = floor_for_frame(depth, intrinsics, plane if plane is not None else self.plane,
                                self.seed)
        inside = self.workspace.inside(depth.shape) if inside is None else inside
        labels, scores = segment_geometric(depth, intrinsics, plane, self.params, inside)
        return Segmentation(labels, np.ones(labels.shape, np.float32), scores)


def segment_rgbd(segmenter, rgb: np.ndarray, depth: np.ndarray | None,
                 intrinsics: PinholeIntrinsics, floor: np.ndarray | None = None,
                 seed: int = 0, inside: np.ndarray | None = None) -> Segmentation:
    """One frame through either kind of segmenter, as the segmentation node runs it: a
    :class:`GeometricSegmenter` reads the depth (``floor`` and ``inside`` override its
    calibration when given: a camera that moves per scene); a ``ModeSegmenter`` reads the
    colour ``(H, W, 3) uint8``, and height above :func:`floor_for_frame` when its model is
    RGB-H. ``depth`` ``(H, W)`` float32 m may be None only for a colour model."""
    if isinstance(segmenter, GeometricSegmenter):
        return segmenter(depth, intrinsics, floor, inside)
    if segmenter.needs_height:
        return segmenter(rgb, height_for_frame(depth, intrinsics, floor, seed))
    return segmenter(rgb)
