"""The exported monocular depth model at inference (ONNX Runtime; no torch, no ROS).

The model gives depth up to an unknown factor; a cell that knows where its tray floor is
(``core.floor_plane``, calibrated once) recovers the factor per frame with
``core.mono_depth.floor_plane_scale``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import plane_depth
from perception_nodes.core.instance_encoding import preprocess
from perception_nodes.core.mono_depth import floor_plane_scale
from perception_nodes.inference.onnx_model import OnnxModel

SCALE_MODES = ("floor_plane", "none")


class MonoDepthEstimator:
    """``(H, W, 3) uint8`` RGB -> ``(H, W) float32`` depth, aligned to the input.

    ``floor_plane`` ``(nx, ny, nz, d)`` in the camera's optical frame (metres) with
    ``region`` ``(H, W) bool`` (where the floor may be seen) makes the output metric;
    without them the output is in the model's own unit (``scale_mode`` ``none``).
    """

    def __init__(self, path: Path | str, providers: str | list[str] = "auto",
                 threads: int = 0) -> None:
        self.model = OnnxModel(path, providers, threads)
        shape = self.model.inputs["image"][0]
        self.input_size = (int(shape[2]), int(shape[3]))
        self._floor: dict[tuple, np.ndarray] = {}

    def relative(self, rgb: np.ndarray) -> np.ndarray:
        """Depth up to scale ``(H, W) float32`` at the input's size (bilinear resize)."""
        out = self.model.run({"image": preprocess(rgb, self.input_size)})["out"][0, 0]
        h, w = rgb.shape[:2]
        if out.shape != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return out.astype(np.float32, copy=False)

    def metric(self, rgb: np.ndarray, intrinsics: PinholeIntrinsics, floor_plane: np.ndarray,
               region: np.ndarray) -> tuple[np.ndarray, float]:
        """Metric depth (m) and the factor applied, from the calibrated floor plane."""
        rel = self.relative(rgb)
        floor = self.floor_depth(intrinsics, floor_plane, rel.shape)
        scale = floor_plane_scale(rel, floor, region)
        rel *= np.float32(scale)  # rel is this call's own array: scaled in place
        return rel, scale

    def floor_depth(self, intrinsics: PinholeIntrinsics, floor_plane: np.ndarray,
                    shape: tuple[int, int]) -> np.ndarray:
        """The empty floor's depth image, kept per camera (fixed cameras: made once)."""
        key = (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, *shape,
               *np.asarray(floor_plane, float).round(6))
        if key not in self._floor:
            self._floor[key] = plane_depth(intrinsics, floor_plane, shape)
        return self._floor[key]
