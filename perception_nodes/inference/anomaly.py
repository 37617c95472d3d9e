"""Anomaly instances of one RGB-D frame (UGainS on our cell; ONNX Runtime, no ROS).

The pixel score is our RbA adaptation (``core.anomaly``): the tray floor plane from
calibration says where something stands; the segmentation model, trained with outlier
exposure, says how much its known-item hypotheses (prior mean and latent samples) claim each
pixel; the score is "standing there and unclaimed". Prompts from the score are segmented by
the learned prompt model or, for comparison, by superpixel region growing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception_nodes.core.anomaly import (
    AnomalyInstances,
    AnomalyParams,
    SuperpixelSnap,
    anomaly_instances,
    anomaly_score,
    occupancy,
)
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import height_above_plane
from perception_nodes.core.grid_slic import grid_slic
from perception_nodes.core.region_grow import region_grow_segmenter

PROMPT_METHODS = ("model", "region_grow")
SNAP_CELL_PX = 4  # superpixels the prompt model's stride-4 masks are snapped to


@dataclass
class AnomalyFrame:
    """The score map ``(H, W) float32`` (NaN ignored), the height above the floor ``(H, W)``
    metres, and the instances."""

    score: np.ndarray
    height: np.ndarray
    instances: AnomalyInstances


class AnomalyDetector:
    """Segmentation model (claim) + prompt segmenter + :class:`AnomalyParams`."""

    def __init__(self, segmenter_path: Path | str, prompt_path: Path | str | None,
                 params: AnomalyParams | None = None, num_samples: int = 4,
                 providers: str | list[str] = "auto", seed: int = 0,
                 prompt_method: str = "model") -> None:
        from perception_nodes.inference.prompt_segmenter import PromptSegRunner
        from perception_nodes.inference.segmenter import SegmenterRunner

        if prompt_method not in PROMPT_METHODS:
            raise ValueError(f"prompt_method {prompt_method!r}: one of {PROMPT_METHODS}")
        if prompt_method == "model" and prompt_path is None:
            raise ValueError("prompt_method 'model' needs prompt_path")
        self.segmenter = SegmenterRunner(segmenter_path, providers, seed)
        self.prompt = PromptSegRunner(prompt_path, providers) if prompt_method == "model" \
            else None
        self.params = params or AnomalyParams()
        self.num_samples, self.seed = num_samples, seed

    def score(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
              floor_plane: np.ndarray, ignore: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """``(score, height)`` of a frame: ``(H, W, 3) uint8`` RGB, ``(H, W)`` depth in metres
        (NaN invalid), the floor plane ``(4,)`` in the optical frame."""
        height = height_above_plane(depth, intrinsics, floor_plane)
        claim = self.segmenter.predict_claim(rgb, self.num_samples, height)
        return anomaly_score(claim, occupancy(height), ignore), height

    def segmenter_for(self, rgb: np.ndarray, height: np.ndarray):
        """The prompt segmenter of this frame: points ``(P, 2)`` -> ``(P, H, W)`` prob."""
        if self.prompt is not None:
            snap, segment = SuperpixelSnap(grid_slic(rgb, SNAP_CELL_PX)), \
                self.prompt.for_frame(rgb, height)
            return lambda points: snap(segment(points))
        return region_grow_segmenter(rgb, height)

    def detect(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
               floor_plane: np.ndarray, ignore: np.ndarray | None = None,
               stamp_seed: int = 0) -> AnomalyFrame:
        """Score, prompts, masks, NMS and the refined score of one frame; the prompt sampling
        is seeded by ``(seed, stamp_seed)`` so a replayed frame gives the same instances."""
        score, height = self.score(rgb, depth, intrinsics, floor_plane, ignore)
        rng = np.random.default_rng([self.seed, stamp_seed])
        inst = anomaly_instances(score, self.segmenter_for(rgb, height), self.params, rng,
                                 ignore)
        return AnomalyFrame(score, height, inst)
