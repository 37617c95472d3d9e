"""The superpixel instance model at inference (superpixel one-shot): ONNX Runtime plus the core.

The network (``image`` -> ``out (1, 2 + D, h, w)``) and the grid-preserving superpixels of
the full-resolution image run at the same time on two threads (ONNX Runtime and OpenCV
release the GIL), as superpixel one-shot runs gSLICr beside the CNN; the clustering then
runs on the
grid and the superpixels carry its labels to every pixel.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.core.grid_slic import grid_slic, upsample_grid
from perception_nodes.core.instance_encoding import network_input
from perception_nodes.core.superpixel_instances import (
    GridInstances,
    bilinear_label_image,
    cluster_all_to_all,
    cluster_with_centres,
)
from perception_nodes.inference.onnx_model import OnnxModel

# Our focal centre loss (superpixel one-shot's alpha 0.01) leaves centre confidences near
# 0.2 at most,
# so the paper's 0.7 finds no centre: 0.05 is the best of the validation sweep in
# `perception eval superpixel` (docs/results/superpixel/float/tables.md).
TUNED_CENTRE_THRESHOLD = 0.05


@dataclass
class SuperpixelResult:
    """``labels (H, W) uint16`` (0 none), ``scores (N,) float32`` of labels 1..N, the grid
    instances, and seconds per stage (``superpixels``, ``network``, ``clustering``,
    ``upsampling``)."""

    labels: np.ndarray
    scores: np.ndarray
    grid: GridInstances
    seconds: dict[str, float] = field(default_factory=dict)


def superpixel_cell(image_size: tuple[int, int], grid: tuple[int, int]) -> int:
    """Superpixel size for an image whose network grid is ``grid``: the even number of
    pixels per grid element nearest to the image's (8 for 640x480 on an 80x60 grid)."""
    per_cell = image_size[1] / grid[1]
    return max(2, 2 * int(round(per_cell / 2)))


class SuperpixelRunner:
    """An exported superpixel model and its post-processing.

    Args:
        path: the ONNX file.
        providers: ONNX Runtime providers.
        centres: cluster around predicted centres (the paper) or all-to-all (baseline).
        upsampling: ``superpixel`` (the paper) or ``bilinear``.
        centre_threshold: centre confidence that makes a centre (0.7 in the paper; see
            ``TUNED_CENTRE_THRESHOLD``).
    """

    def __init__(self, path: Path | str, providers: str | list[str] = "auto",
                 centres: bool = True, upsampling: str = "superpixel",
                 centre_threshold: float = TUNED_CENTRE_THRESHOLD, parallel: bool = False,
                 threads: int = 0) -> None:
        if upsampling not in ("superpixel", "bilinear"):
            raise ValueError(f"upsampling must be superpixel or bilinear, not {upsampling!r}")
        # parallel: one core for the network, one for the superpixels beside it
        # (superpixel one-shot
        # runs gSLICr beside the CNN). On our two cores the two stages slow each other down
        # (memory bandwidth), and all cores for the network, then the superpixels, is faster.
        self.parallel = parallel
        self.model = OnnxModel(path, providers, threads=1 if parallel else threads)
        shape = self.model.inputs["image"][0]
        self.channels, self.input_size = int(shape[1]), (int(shape[2]), int(shape[3]))
        self.centres, self.upsampling = centres, upsampling
        self.centre_threshold = centre_threshold
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="superpixels")

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def needs_height(self) -> bool:
        """Whether the model reads height above the floor beside colour (RGB-H)."""
        return self.channels == 4

    def _superpixels(self, rgb: np.ndarray, grid: tuple[int, int]
                     ) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        cell = superpixel_cell(rgb.shape[:2], grid)
        size = (grid[0] * cell, grid[1] * cell)
        image = rgb if rgb.shape[:2] == size else \
            cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return grid_slic(image, cell), time.perf_counter() - start

    def segment(self, rgb: np.ndarray, score_threshold: float = 0.0,
                height: np.ndarray | None = None) -> SuperpixelResult:
        """Instances of an ``(H, W, 3) uint8`` RGB image at its own resolution; those scoring
        below ``score_threshold`` are dropped (on the grid) and the rest renumbered 1..N.
        ``height``: ``(H, W) float32`` metres above the floor (NaN unknown) for RGB-H
        models."""
        h, w = rgb.shape[:2]
        grid = (self.input_size[0] // 4, self.input_size[1] // 4)
        pending = None
        if self.upsampling == "superpixel" and self.parallel:
            pending = self.pool.submit(self._superpixels, rgb, grid)
        start = time.perf_counter()
        image = network_input(rgb, height, self.input_size, self.channels)
        out = self.model.run({"image": image})["out"][0]
        seconds = {"network": time.perf_counter() - start}
        start = time.perf_counter()
        inst = cluster_with_centres(out, centre_threshold=self.centre_threshold) \
            if self.centres else cluster_all_to_all(out)
        inst = inst.above(score_threshold)
        seconds["clustering"] = time.perf_counter() - start
        if self.upsampling == "superpixel":
            superpixels, seconds["superpixels"] = pending.result() if pending is not None \
                else self._superpixels(rgb, grid)
            start = time.perf_counter()
            labels = upsample_grid(inst.labels, superpixels)
            if labels.shape != (h, w):
                labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        else:
            start = time.perf_counter()
            labels = bilinear_label_image(inst.labels, (h, w))
        seconds["upsampling"] = time.perf_counter() - start
        return SuperpixelResult(labels.astype(np.uint16), inst.scores, inst, seconds)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
