"""The exported grasp segmentation model at inference (ONNX Runtime; no torch, no ROS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception_nodes.core.grasp_segmentation import (
    contour_filter,
    grasp_input,
    grasp_window,
    paste_window,
    prediction_filter,
    scaled_entropy_threshold,
    subtraction_mask,
)
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


MASK_SOURCES = ("grasp", "subtract")


class GraspedItemMasker:
    """The grasped item's mask from a grasp's before/after frames (grasp self-supervision
    Sec. III-A, III-B.1) and whether it passes the filters: ``grasp`` = the grasp
    segmentation model's visible mask with the occlusion, entropy and contour filters;
    ``subtract`` = grey-blur subtraction with the contour filter. ``t_ent`` None: the
    paper's threshold scaled to each image (``scaled_entropy_threshold``); ``use_filter``
    False keeps every mask."""

    def __init__(self, source: str, model: Path | str | None = None,
                 t_ent: float | None = None, use_filter: bool = True,
                 threads: int = 0) -> None:
        if source not in MASK_SOURCES or (source == "grasp" and model is None):
            raise ValueError(f"mask source {source!r} needs one of {MASK_SOURCES} "
                             "(grasp: a model)")
        self.source, self.t_ent, self.use_filter = source, t_ent, use_filter
        self.runner = GraspSegRunner(model, "cpu", threads) if source == "grasp" else None

    def __call__(self, before: np.ndarray, after: np.ndarray, grasp_mask: np.ndarray
                 ) -> tuple[np.ndarray, bool]:
        """``(mask (H, W) bool, kept)`` of one grasp (``(H, W, 3) uint8`` frames,
        ``(H, W)`` grasp mask)."""
        if self.runner is None:
            mask = subtraction_mask(before, after, "subtract")
            return mask, contour_filter(mask) if self.use_filter else True
        visible, amodal = self.runner.predict(before, after, grasp_mask)
        t_ent = scaled_entropy_threshold(visible.shape) if self.t_ent is None else self.t_ent
        kept = prediction_filter(visible, amodal, t_ent=t_ent) if self.use_filter else True
        return visible > 0.5, kept
