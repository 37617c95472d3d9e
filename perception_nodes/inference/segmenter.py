"""The latent segmenter at inference: ONNX Runtime outputs to instances (no torch, no ROS).

One call decodes the prior mean and k latent samples together: ``eps`` holds a zero row
(``z`` = prior mean, seed 000 Sec. IV-D) then k standard-normal rows, so the backbone runs
once and the k + 1 heads run as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception_nodes.core.confidence_masks import (
    InstancePrediction,
    confidence_masks,
    resize_prediction,
    union_nms,
)
from perception_nodes.core.instance_encoding import decode_instances, preprocess
from perception_nodes.inference.onnx_model import OnnxModel

MODES = ("confidence_mask", "union_nms", "prior_mean", "baseline")


@dataclass
class DecodeParams:
    """Thresholds of :func:`decode_instances`."""

    fg_threshold: float = 0.5
    centre_threshold: float = 0.3
    max_vote_distance: float = 3.0


class SegmenterRunner:
    """An exported model (``image``, ``eps`` -> ``out``) with its sampler.

    Args:
        path: the ONNX file.
        providers: ONNX Runtime providers (see ``select_providers``).
        seed: seeds the latent draws, so a replayed bag gives the same masks.
    """

    def __init__(self, path: Path | str, providers: str | list[str] = "auto", seed: int = 0,
                 decode: DecodeParams | None = None) -> None:
        self.model = OnnxModel(path, providers)
        shape = self.model.inputs["image"][0]
        self.input_size = (int(shape[2]), int(shape[3]))
        self.latent_dim = int(self.model.inputs["eps"][0][1])
        self.rng = np.random.default_rng(seed)
        self.decode = decode or DecodeParams()

    @property
    def provider(self) -> str:
        return self.model.provider

    def _instances(self, out: np.ndarray, image_size: tuple[int, int]) -> InstancePrediction:
        d = self.decode
        return decode_instances(out[0], out[1], out[2:4], image_size, d.fg_threshold,
                                d.centre_threshold, d.max_vote_distance)

    def predict(self, rgb: np.ndarray, num_samples: int
                ) -> tuple[InstancePrediction, list[InstancePrediction]]:
        """``(prior mean, [k samples])`` of an ``(H, W, 3) uint8`` image, on the network's
        grid (``H/4 x W/4`` of the model input; see :func:`resize_prediction`)."""
        eps = np.zeros((num_samples + 1, self.latent_dim), np.float32)
        eps[1:] = self.rng.standard_normal((num_samples, self.latent_dim), dtype=np.float32)
        out = self.model.run({"image": preprocess(rgb, self.input_size), "eps": eps})["out"]
        grid = out.shape[2:]
        return self._instances(out[0], grid), [self._instances(o, grid) for o in out[1:]]


def run_mode(runner: SegmenterRunner, rgb: np.ndarray, mode: str, num_samples: int = 8,
             confidence_p: float = 0.9, nms_iou: float = 0.5) -> InstancePrediction:
    """Instances of ``rgb`` by ``mode`` (``MODES``; ``baseline`` and ``prior_mean`` decode
    one hypothesis, the others ``num_samples`` draws)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
    size = rgb.shape[:2]
    if mode in ("prior_mean", "baseline"):
        return resize_prediction(runner.predict(rgb, 0)[0], size)
    _, samples = runner.predict(rgb, num_samples)
    if mode == "confidence_mask":
        pred = confidence_masks([(s.masks, s.scores) for s in samples], confidence_p)
    else:
        pooled = np.concatenate([s.masks for s in samples])
        pred = union_nms(pooled, np.concatenate([s.scores for s in samples]), nms_iou)
    return resize_prediction(pred, size)
