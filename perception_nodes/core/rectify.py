"""Lens distortion removed once per camera: undistortion maps built from a camera's K, D and
distortion model, applied to colour (bilinear) and to registered depth (nearest: a depth is
never blended across an edge). Depth along the optical axis does not change with the lens,
so a rectified depth image keeps its values (numpy + OpenCV).

Models: ``plumb_bob`` (k1, k2, t1, t2, k3) and ``rational_polynomial`` (k1, k2, t1, t2, k3,
k4, k5, k6), as ROS CameraInfo carries them; the rectified camera is ``new_k`` (CameraInfo's
P, or K when P is unset), with zero distortion.
"""

from __future__ import annotations

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics

MODELS = {"plumb_bob": 5, "rational_polynomial": 8}


class Rectifier:
    """Undistortion of ``(height, width)`` images of a camera; ``identity`` when the
    distortion coefficients are all zero (nothing is remapped).

    Raises:
        ValueError: an unknown distortion model, or coefficients of the wrong count or not
            finite.
    """

    def __init__(self, k: np.ndarray, d: np.ndarray, model: str, size: tuple[int, int],
                 new_k: np.ndarray | None = None) -> None:
        d = np.asarray(d, np.float64).ravel()
        if model not in MODELS and d.any():
            raise ValueError(f"distortion model {model!r} is not supported (use "
                             f"{sorted(MODELS)}, or rectify in the driver)")
        if d.any() and len(d) not in (MODELS[model], 4, 5, 8):
            raise ValueError(f"{model} takes {MODELS[model]} coefficients, got {len(d)}")
        if not np.isfinite(d).all():
            raise ValueError("distortion coefficients are not finite")
        self.k = np.asarray(k, np.float64).reshape(3, 3)
        self.new_k = self.k if new_k is None or not np.asarray(new_k).any() else \
            np.asarray(new_k, np.float64).reshape(3, 3)
        self.height, self.width = size
        self.identity = not d.any() and np.allclose(self.new_k, self.k)
        self.maps = None
        if not self.identity:
            self.maps = cv2.initUndistortRectifyMap(self.k, d, None, self.new_k,
                                                    (self.width, self.height), cv2.CV_32FC1)

    @property
    def intrinsics(self) -> PinholeIntrinsics:
        """The rectified camera (zero distortion)."""
        return PinholeIntrinsics.from_matrix(self.new_k, self.width, self.height)

    def colour(self, image: np.ndarray) -> np.ndarray:
        """``(H, W[, C])`` image, undistorted bilinearly (black outside the lens's view)."""
        if self.identity:
            return image
        return cv2.remap(image, *self.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def depth(self, depth: np.ndarray) -> np.ndarray:
        """``(H, W) float32`` metres (NaN invalid), undistorted by nearest neighbour (NaN
        outside the lens's view)."""
        if self.identity:
            return depth
        return cv2.remap(np.asarray(depth, np.float32), *self.maps, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))
