"""The latent segmenter at inference: ONNX Runtime outputs to instances (no torch, no ROS).

One call decodes the prior mean and k latent samples together: ``eps`` holds a zero row
(``z`` = prior mean, Latent-MaskRCNN Sec. IV-D) then k standard-normal rows, so the backbone runs
once and the k + 1 heads run as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.anomaly import known_item_claim
from perception_nodes.core.confidence_masks import (
    InstancePrediction,
    confidence_masks_from_labels,
    masks_to_labels,
    union_nms,
)
from perception_nodes.core.grid_slic import grid_superpixels, upsample_grid
from perception_nodes.core.instance_encoding import decode_instance_labels, network_input
from perception_nodes.inference.onnx_model import OnnxModel

MODES = ("confidence_mask", "union_nms", "prior_mean", "baseline")
# the model each kind of mode loads by default (names in models/manifest.yaml)
DEFAULT_MODELS = {"latent": "latent_segmenter", "baseline": "baseline_segmenter",
                  "superpixel": "superpixel_segmenter_int8"}


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
        threads: ONNX Runtime intra-op threads (0: all cores).
    """

    def __init__(self, path: Path | str, providers: str | list[str] = "auto", seed: int = 0,
                 decode: DecodeParams | None = None, threads: int = 0) -> None:
        self.model = OnnxModel(path, providers, threads)
        shape = self.model.inputs["image"][0]
        self.channels, self.input_size = int(shape[1]), (int(shape[2]), int(shape[3]))
        self.latent_dim = int(self.model.inputs["eps"][0][1])
        self.rng = np.random.default_rng(seed)
        self.decode = decode or DecodeParams()

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def needs_height(self) -> bool:
        """Whether the model reads height above the floor beside colour (RGB-H)."""
        return self.channels == 4

    def _run(self, rgb: np.ndarray, height: np.ndarray | None, num_samples: int,
             prior_mean: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """One model call: raw outputs ``(K, 4, h, w)``, grid labels ``(K, h, w)`` and scores
        of the prior mean (unless ``prior_mean`` is False) and ``num_samples`` draws."""
        draws = self.rng.standard_normal((num_samples, self.latent_dim), dtype=np.float32)
        eps = np.concatenate([np.zeros((1, self.latent_dim), np.float32), draws]) \
            if prior_mean else draws
        image = network_input(rgb, height, self.input_size, self.channels)
        out = self.model.run({"image": image, "eps": eps})["out"]
        d = self.decode
        decoded = [decode_instance_labels(o[0], o[1], o[2:4], d.fg_threshold,
                                          d.centre_threshold, d.max_vote_distance)
                   for o in out]
        return out, np.stack([lab for lab, _ in decoded]), [s for _, s in decoded]

    def predict_labels(self, rgb: np.ndarray, num_samples: int, prior_mean: bool = True,
                       height: np.ndarray | None = None
                       ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The prior mean (unless ``prior_mean`` is False) and ``num_samples`` draws of an
        ``(H, W, 3) uint8`` image as grid label images ``(1 + k, h, w) int32`` (``(k, h, w)``
        without the prior mean; ``h, w`` = the model input / 4) with their scores.
        ``height``: ``(H, W) float32`` metres above the floor (NaN unknown), which RGB-H
        models need (``needs_height``) and colour models ignore."""
        _, labels, scores = self._run(rgb, height, num_samples, prior_mean)
        return labels, scores

    def predict_claim(self, rgb: np.ndarray, num_samples: int,
                      height: np.ndarray | None = None) -> np.ndarray:
        """``(H, W) float32``: how much the prior mean and ``num_samples`` latent draws claim
        each pixel of the image as a known item (``core.anomaly.known_item_claim``, bilinear
        from the grid)."""
        out, labels, scores = self._run(rgb, height, num_samples, True)
        claim = known_item_claim(1.0 / (1.0 + np.exp(-out[:, 0])), labels, scores)
        h, w = rgb.shape[:2]
        return cv2.resize(claim, (w, h), interpolation=cv2.INTER_LINEAR)

    def predict(self, rgb: np.ndarray, num_samples: int, height: np.ndarray | None = None
                ) -> tuple[InstancePrediction, list[InstancePrediction]]:
        """``(prior mean, [k samples])`` of an ``(H, W, 3) uint8`` image (and its height, see
        :meth:`predict_labels`) as masks on the network's grid (see :func:`label_image` for
        image resolution)."""
        labels, scores = self.predict_labels(rgb, num_samples, height=height)
        preds = [InstancePrediction(lab[None] == np.arange(1, len(s) + 1)[:, None, None], s)
                 for lab, s in zip(labels, scores, strict=True)]
        return preds[0], preds[1:]


def run_mode(runner: SegmenterRunner, rgb: np.ndarray, mode: str, num_samples: int = 8,
             confidence_p: float = 0.9, nms_iou: float = 0.5,
             height: np.ndarray | None = None) -> InstancePrediction:
    """Instances of ``rgb`` by ``mode`` (``MODES``; ``baseline`` and ``prior_mean`` decode
    one hypothesis, the others ``num_samples`` draws), on the network's grid: bring them to
    the image with :func:`label_image` (or ``resize_prediction`` for masks)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
    if mode in ("prior_mean", "baseline"):
        return runner.predict(rgb, 0, height)[0]
    if mode == "confidence_mask":
        labels, scores = runner.predict_labels(rgb, num_samples, False, height)
        return confidence_masks_from_labels(labels, scores, confidence_p)
    _, samples = runner.predict(rgb, num_samples, height)
    pooled = np.concatenate([s.masks for s in samples])
    return union_nms(pooled, np.concatenate([s.scores for s in samples]), nms_iou)


@dataclass
class Segmentation:
    """What the segmentation node publishes for one image: ``labels (H, W) uint16``,
    ``confidence (H, W) float32`` (share of samples agreeing; 1.0 for one hypothesis),
    ``scores (N,) float32`` of labels 1..N, and the latent samples' grid labels ``(k, h, w)
    uint16`` (None in the single-hypothesis modes)."""

    labels: np.ndarray
    confidence: np.ndarray
    scores: np.ndarray
    samples: np.ndarray | None = None


def segment(runner: SegmenterRunner, rgb: np.ndarray, mode: str, num_samples: int = 8,
            confidence_p: float = 0.9, score_threshold: float = 0.3,
            height: np.ndarray | None = None) -> Segmentation:
    """:func:`run_mode` brought to the image's resolution, with the samples it drew (the
    grasp planner's double-pick risk reads them)."""
    if mode == "confidence_mask":
        samples, scores = runner.predict_labels(rgb, num_samples, False, height)
        pred = confidence_masks_from_labels(samples, scores, confidence_p)
        labels, confidence, kept = label_image(pred, rgb.shape[:2], score_threshold, rgb)
        return Segmentation(labels, confidence, kept, samples.astype(np.uint16))
    pred = run_mode(runner, rgb, mode, num_samples, confidence_p, height=height)
    labels, confidence, kept = label_image(pred, rgb.shape[:2], score_threshold, rgb)
    return Segmentation(labels, confidence, kept)


def label_image(pred: InstancePrediction, size: tuple[int, int], score_threshold: float = 0.0,
                rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instances scoring at least ``score_threshold`` as an ``(H, W) uint16`` label image
    (label ``i + 1`` has score ``scores[i]``; overlaps go to the higher score) and the
    ``(H, W) float32`` confidence (1.0 where the method has none); returns ``(labels,
    confidence, scores)``.

    With ``rgb`` (the image, ``size``) and an image an integer number of grid cells across,
    the grid is carried to the image by grid-SLIC superpixels that keep it (superpixel
    one-shot Sec. III-C, the superpixel mode's upsampling): each cell's value goes to the
    pixels of its superpixel, so mask edges follow the image's edges instead of the cells.
    Otherwise both are resized nearest."""
    keep = pred.scores >= score_threshold
    scores = pred.scores[keep].astype(np.float32)
    grid = masks_to_labels(pred.masks[keep], scores)
    h, w = size
    conf = pred.confidence if pred.confidence is not None else \
        np.ones(grid.shape, np.float32)
    superpixels = None if rgb is None else grid_superpixels(rgb, grid.shape)
    if superpixels is not None:
        return (upsample_grid(grid, superpixels),
                upsample_grid(conf.astype(np.float32), superpixels), scores)
    labels = cv2.resize(grid, (w, h), interpolation=cv2.INTER_NEAREST)
    confidence = cv2.resize(conf.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    return labels, confidence, scores


def model_kind(mode: str) -> str:
    """Which model a mode runs: ``baseline``, ``superpixel`` or ``latent`` (the rest)."""
    if mode not in (*MODES, "superpixel"):
        raise ValueError(f"unknown mode {mode!r}; one of {(*MODES, 'superpixel')}")
    return mode if mode in ("baseline", "superpixel") else "latent"


class ModeSegmenter:
    """The runner a segmentation mode needs and one call from image to :class:`Segmentation`
    (the segmentation node and the pick evaluation both use it).

    Args:
        mode: one of ``MODES`` or ``superpixel``.
        path: the mode's ONNX model (see ``model_kind`` and ``DEFAULT_MODELS``).
        providers, seed, threads: as :class:`SegmenterRunner`.
        num_samples, confidence_p, score_threshold: as :func:`segment` (latent modes).
        centre_threshold: mode superpixel (superpixel one-shot; instances are gated by it).
    """

    def __init__(self, mode: str, path: Path | str, providers: str | list[str] = "auto",
                 seed: int = 0, threads: int = 0, num_samples: int = 8,
                 confidence_p: float = 0.9, score_threshold: float = 0.3,
                 centre_threshold: float | None = None) -> None:
        from perception_nodes.inference.superpixel import (
            TUNED_CENTRE_THRESHOLD,
            SuperpixelRunner,
        )

        self.mode = mode
        if model_kind(mode) == "superpixel":
            threshold = TUNED_CENTRE_THRESHOLD if centre_threshold is None else centre_threshold
            self.runner = SuperpixelRunner(path, providers, centre_threshold=threshold,
                                           threads=threads)
        else:
            self.runner = SegmenterRunner(path, providers, seed, threads=threads)
        self.options = (num_samples, confidence_p, score_threshold)

    @property
    def provider(self) -> str:
        return self.runner.provider

    @property
    def needs_height(self) -> bool:
        """Whether the mode's model reads height above the floor (call with ``height``)."""
        return self.runner.needs_height

    def __call__(self, rgb: np.ndarray, height: np.ndarray | None = None) -> Segmentation:
        """One ``(H, W, 3) uint8`` image (with its ``(H, W)`` height in metres above the
        floor, NaN unknown, for RGB-H models) to what the node publishes."""
        if self.mode == "superpixel":
            result = self.runner.segment(rgb, height=height)
            return Segmentation(result.labels, np.ones(result.labels.shape, np.float32),
                                result.scores)  # one hypothesis: full confidence
        return segment(self.runner, rgb, self.mode, *self.options, height=height)

    def close(self) -> None:
        close = getattr(self.runner, "close", None)
        if close is not None:
            close()
