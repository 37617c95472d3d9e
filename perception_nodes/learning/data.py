"""Training data: simulated scenes (``perception dataset``) to network inputs and targets,
through the core's one pre/post-processing path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.cut_paste import ObjectCrop, paste_objects
from perception_nodes.core.floor_plane import height_above_plane
from perception_nodes.core.instance_encoding import encode_instances, network_input
from perception_nodes.learning.augment import augment_scene
from perception_nodes.learning.model import STRIDE
from perception_nodes.sim.dataset import load_scene, scene_floor_plane

INPUTS = ("rgb", "rgbh")  # what a model reads: colour, or colour and height above the floor


def load_training_scene(path: Path, size: tuple[int, int], rng: np.random.Generator | None,
                        foreign_as_background: bool = False, augmentation: str = "basic"
                        ) -> tuple[np.ndarray, np.ndarray]:
    """A scene's ``rgb`` and ``labels`` at ``size`` ``(h, w)`` (area / nearest resize),
    augmented (``learning.augment``, ``augmentation`` kind) when ``rng`` is given;
    contiguous. With ``foreign_as_background`` the scene's foreign objects are labelled 0:
    not an item (outlier exposure, as RbA's fine-tuning on pasted OoD objects, UGainS
    Sec. 3)."""
    rgb, labels, _ = _load_scene(path, size, rng, foreign_as_background, None, augmentation)
    return rgb, labels


def load_training_scene_with_height(path: Path, size: tuple[int, int],
                                    rng: np.random.Generator | None,
                                    floor_plane: np.ndarray | None = None,
                                    augmentation: str = "basic",
                                    foreign_as_background: bool = False
                                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`load_training_scene` plus the ``(h, w) float32`` height above the tray floor
    in metres from the scene's depth and intrinsics (NaN where depth is invalid), augmented
    with the image. The floor is ``floor_plane`` (optical frame) or, when None, the scene's
    own calibrated floor (``sim.dataset.scene_floor_plane``: each randomized scene has
    its own camera pose)."""
    return _load_scene(path, size, rng, foreign_as_background,
                       "scene" if floor_plane is None else floor_plane, augmentation)


def _load_scene(path: Path, size: tuple[int, int], rng: np.random.Generator | None,
                foreign_as_background: bool, floor_plane: np.ndarray | str | None,
                augmentation: str):
    scene = load_scene(path)
    rgb, labels = scene["rgb"], scene["labels"]
    height = None
    if floor_plane is not None:
        plane = scene_floor_plane(scene) if isinstance(floor_plane, str) else floor_plane
        intr = PinholeIntrinsics.from_matrix(scene["camera_k"], labels.shape[1],
                                             labels.shape[0])
        height = height_above_plane(scene["depth"], intr, plane)
    if foreign_as_background and "foreign" in scene and len(scene["foreign"]):
        labels = np.where(np.isin(labels, scene["foreign"]), 0, labels).astype(labels.dtype)
    h, w = size
    if labels.shape != (h, w):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        if height is not None:
            height = cv2.resize(height, (w, h), interpolation=cv2.INTER_NEAREST)
    if rng is not None:
        return augment_scene(rgb, labels, height, rng, augmentation)
    height = None if height is None else np.ascontiguousarray(height)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(labels), height


class SceneDataset(Dataset):
    """Scenes of one split folder, augmented when ``augment`` (``augmentation`` kind, see
    ``learning.augment``); ``inputs`` ``rgb`` or ``rgbh`` (colour and height above the
    scene's calibrated floor, ``core.instance_encoding.preprocess_rgbh``).

    Augmentation is seeded by ``(seed, epoch, index)`` so a run is reproducible.
    """

    def __init__(self, folder: Path | str, input_size: tuple[int, int], augment: bool = False,
                 seed: int = 0, foreign_as_background: bool = False, inputs: str = "rgb",
                 augmentation: str = "basic") -> None:
        self.paths = sorted(Path(folder).glob("scene_*.npz"))
        if not self.paths:
            raise FileNotFoundError(f"no scene_*.npz in {folder}; run `perception dataset`")
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, not {inputs!r}")
        self.input_size, self.augment, self.seed, self.epoch = input_size, augment, seed, 0
        self.foreign_as_background = foreign_as_background
        self.inputs, self.augmentation = inputs, augmentation

    def __len__(self) -> int:
        return len(self.paths)

    def rng(self, index: int) -> np.random.Generator | None:
        """This epoch's augmentation draw for scene ``index`` (None without augmentation)."""
        return np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None

    def scene_rgbh(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Scene ``index``'s ``rgb``, ``labels`` and height (None for RGB models) as the
        network sees them this epoch."""
        if self.inputs == "rgb":
            rgb, labels = self.scene(index)
            return rgb, labels, None
        return load_training_scene_with_height(self.paths[index], self.input_size,
                                               self.rng(index), None, self.augmentation,
                                               self.foreign_as_background)

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index``'s ``rgb`` and ``labels`` as the network sees them this epoch."""
        return load_training_scene(self.paths[index], self.input_size, self.rng(index),
                                   self.foreign_as_background, self.augmentation)

    def image(self, rgb: np.ndarray, height: np.ndarray | None) -> torch.Tensor:
        """The network input ``(C, h, w)`` of one augmented scene."""
        channels = 4 if self.inputs == "rgbh" else 3
        return torch.from_numpy(network_input(rgb, height, self.input_size, channels)[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, labels, height = self.scene_rgbh(index)
        targets = encode_instances(labels, STRIDE)
        return {
            "image": self.image(rgb, height),
            "fg": torch.from_numpy(targets.fg),
            "heatmap": torch.from_numpy(targets.heatmap),
            "offsets": torch.from_numpy(targets.offsets),
            "instance_ids": torch.from_numpy(targets.instance_ids),
        }


class PastedSceneDataset(SceneDataset):
    """Labelled scenes with 0..``max_objects`` grasped-object crops pasted on each, drawn
    afresh every epoch (grasp self-supervision Sec. III-B.2), boundaries inpainted
    ``inpaint_px`` wide
    (Sec. III-B.3; 0: none). The pasting is seeded by ``(seed, epoch, index)``."""

    def __init__(self, folder: Path | str, input_size: tuple[int, int], crops: list[ObjectCrop],
                 max_objects: int = 25, inpaint_px: int = 5, augment: bool = True,
                 seed: int = 0) -> None:
        super().__init__(folder, input_size, augment, seed)
        if not crops:
            raise ValueError("no crops to paste")
        self.crops, self.max_objects, self.inpaint_px = crops, max_objects, inpaint_px

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, labels = super().scene(index)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        return paste_objects(rgb, labels, self.crops, rng, self.max_objects,
                             inpaint_px=self.inpaint_px)[:2]
