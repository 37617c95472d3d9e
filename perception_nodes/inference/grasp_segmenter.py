"""The exported grasp segmentation model at inference (ONNX Runtime; no torch, no ROS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception_nodes.core.grasp_segmentation import grasp_input, grasp_window, paste_window
from perception_nodes.inference.onnx_model import OnnxModel


class GraspSegRunner:
    """``input (1, 10, s, s)`` -> ``out (1, 2, s, s)``: the visible and amodal masks of the
    grasped item in the window around the cups, pasted back into the full image."""

    def __init__(self, path: Path | str, providers: str | list[str] = "auto",
                 threads: int = 0) -> None:
        self.model = OnnxModel(path, providers, threads)
        self.window = int(self.model.inputs["input"][0][2])

    def predict(self, before: np.ndarray, after: np.ndarray, grasp_mask: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(visible, amodal)`` probabilities ``(H, W) float32`` of ``(H, W, 3) uint8``
        before/after frames and the ``(H, W)`` grasp mask; 0 outside the window."""
        top, left = grasp_window(grasp_mask, self.window)
        crop = (slice(top, top + self.window), slice(left, left + self.window))
        x = grasp_input(before[crop], after[crop], grasp_mask[crop])[None]
        out = self.model.run({"input": x.astype(np.float32)})["out"][0]
        full = paste_window(out, (top, left), grasp_mask.shape)
        return full[0], full[1]
