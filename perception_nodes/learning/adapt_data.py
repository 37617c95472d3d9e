"""Training scenes for adapting an instance model to a cell's own items (grasp
self-supervision Sec. III-B.2/3 on the cell's frames; no ROS).

Items alternate between two kinds, both with crops of the cell's grasped items pasted on:

- **cell frames**: a before frame of the cell (its colour and height above the floor).
  Nobody labelled the items already in it, so only the pasted objects and the bare floor
  (less than ``floor_m`` above it) are known; the loss ignores the rest (``known`` = 0).
- **replay scenes**: the original labelled training scenes (``SceneDataset``, with its
  augmentation), so what the model knew is not forgotten; everything is known.

Pasting (0..``max_objects`` crops, rotation 0-360 deg, scale 0.75-1.25, inpainted
boundaries) is seeded by ``(seed, epoch, index)``, so a run is reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from perception_nodes.core.cut_paste import ObjectCrop, paste_objects
from perception_nodes.core.instance_encoding import encode_instances, grid_labels, network_input
from perception_nodes.learning.augment import augment_scene
from perception_nodes.learning.data import SceneDataset
from perception_nodes.learning.model import STRIDE

UNKNOWN = np.uint16(65535)  # a label value no scene uses: carried through augmentation
FLOOR_M = 0.01  # less than this above the floor is bare floor in a cell frame


class CellPasteDataset(Dataset):
    """Cell frames and replay scenes with the cell's crops pasted (module docstring).

    Args:
        frames: the cell's before frames at ``work_size``: ``(rgb (h, w, 3) uint8,
            height (h, w) float32 m above the floor, NaN unknown)`` each.
        crops: the crop bank (each with its height), cut at ``work_size``.
        input_size: ``(h, w)`` of the network (``network_input`` resizes to it).
        work_size: ``(h, w)`` scenes are pasted and augmented at (replay scenes too).
        replay: a folder of labelled training scenes (``scene_*.npz``), or None.
        replay_scenes: at most this many of them.
    """

    def __init__(self, frames: list[tuple[np.ndarray, np.ndarray]], crops: list[ObjectCrop],
                 input_size: tuple[int, int], work_size: tuple[int, int],
                 replay: Path | str | None = None,
                 replay_scenes: int = 1000, max_objects: int = 25, inpaint_px: int = 5,
                 seed: int = 0, augmentation: str = "full") -> None:
        if not frames or not crops:
            raise ValueError(f"{len(frames)} cell frames and {len(crops)} crops: need both")
        if any(c.height is None for c in crops):
            raise ValueError("the crops need heights: the model reads height (RGB-H)")
        self.frames, self.crops, self.input_size = frames, crops, input_size
        self.replay = None
        if replay is not None:
            self.replay = SceneDataset(replay, work_size, augment=True, seed=seed,
                                       foreign_as_background=True, inputs="rgbh",
                                       augmentation=augmentation)
            self.replay.paths = self.replay.paths[:replay_scenes]
        self.max_objects, self.inpaint_px = max_objects, inpaint_px
        self.seed, self.epoch, self.augmentation = seed, 0, augmentation

    def __len__(self) -> int:
        replay = len(self.replay.paths) if self.replay is not None else 0
        return len(self.frames) + min(replay, len(self.frames))

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Item ``index`` as the network sees it this epoch: ``rgb``, ``labels``, ``height``
        and ``known (h, w) bool``."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if index < len(self.frames):
            rgb, height = self.frames[index]
            floor = np.nan_to_num(height, nan=1.0) < FLOOR_M
            labels = np.zeros(rgb.shape[:2], np.uint16)
            rgb, labels, height = paste_objects(rgb, labels, self.crops, rng,
                                                self.max_objects, inpaint_px=self.inpaint_px,
                                                height=height)
            labels = np.where((labels == 0) & ~floor, UNKNOWN, labels).astype(np.uint16)
            rgb, labels, height = augment_scene(rgb, labels, height, rng, self.augmentation)
            known = labels != UNKNOWN
            return rgb, np.where(known, labels, 0).astype(np.uint16), height, known
        self.replay.epoch = self.epoch
        which = int(rng.integers(len(self.replay.paths)))
        rgb, labels, height = self.replay.scene_rgbh(which)
        rgb, labels, height = paste_objects(rgb, labels, self.crops, rng, self.max_objects,
                                            inpaint_px=self.inpaint_px, height=height)
        return rgb, labels, height, np.ones(labels.shape, bool)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, labels, height, known = self.scene(index)
        targets = encode_instances(labels, STRIDE)
        return {
            "image": torch.from_numpy(network_input(rgb, height, self.input_size, 4)[0]),
            "fg": torch.from_numpy(targets.fg),
            "heatmap": torch.from_numpy(targets.heatmap),
            "offsets": torch.from_numpy(targets.offsets),
            "instance_ids": torch.from_numpy(targets.instance_ids),
            "known": torch.from_numpy(grid_labels(known, STRIDE).astype(np.float32)),
        }
