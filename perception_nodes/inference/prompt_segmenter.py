"""The exported point-prompted mask model at inference (ONNX Runtime; no torch, no ROS)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.instance_encoding import network_input
from perception_nodes.inference.onnx_model import OnnxModel


class PromptSegRunner:
    """``image (1, C, h, w)``, ``points (P, 2)`` -> ``out (P, 1, h/4, w/4)`` logits, as
    masks of the whole image; ``C`` = 4 models (``needs_height``) also read the height above
    the tray floor."""

    def __init__(self, path: Path | str, providers: str | list[str] = "auto",
                 threads: int = 0) -> None:
        self.model = OnnxModel(path, providers, threads)
        shape = self.model.inputs["image"][0]
        self.input_size = (int(shape[2]), int(shape[3]))
        self.needs_height = int(shape[1]) == 4

    def predict(self, rgb: np.ndarray, points: np.ndarray, height: np.ndarray | None = None
                ) -> np.ndarray:
        """``(P, H, W) float32`` probability that each pixel of the ``(H, W, 3) uint8`` image
        belongs to the object under each ``(row, col)`` prompt of ``points (P, 2)``
        (bilinear from the model's stride-4 grid). ``height`` ``(H, W)`` metres above the
        tray floor (NaN unknown) is required by RGB-H models and ignored by RGB ones."""
        return self.for_frame(rgb, height)(points)

    def for_frame(self, rgb: np.ndarray, height: np.ndarray | None = None
                  ) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`predict` of one frame as points -> masks, the frame preprocessed once for
        every batch of prompts asked of it (the anomaly pipeline asks twice: first prompts,
        then re-centred ones)."""
        h, w = rgb.shape[:2]
        ih, iw = self.input_size
        image = network_input(rgb, height, self.input_size, 4 if self.needs_height else 3)

        def segment(points: np.ndarray) -> np.ndarray:
            points = np.asarray(points, np.float32).reshape(-1, 2)
            if len(points) == 0:
                return np.zeros((0, h, w), np.float32)
            scaled = (points + 0.5) * np.array([ih / h, iw / w], np.float32) - 0.5
            logits = self.model.run({"image": image, "points": scaled})["out"][:, 0]
            prob = 1.0 / (1.0 + np.exp(-logits))
            return np.stack([cv2.resize(q, (w, h), interpolation=cv2.INTER_LINEAR)
                             for q in prob]).astype(np.float32)

        return segment
