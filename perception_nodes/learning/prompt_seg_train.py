"""Train the point-prompted mask model (our SAM stand-in, UGainS Sec. 3) and export it.

    perception train-prompt-seg --preset default --out runs/train/prompt_seg
    perception train-prompt-seg --preset smoke --out /tmp/ps      # what the tests run

Data: the first ``--scenes`` scenes of ``train`` (items) and of ``anomaly_train`` (items
plus the training foreign objects), class-agnostic: every visible object is an instance and
the held-out foreign set is never seen. Each scene gives ``--prompts`` prompts: most at a
random pixel of a random object (target: that object's mask), one on no object
(target: empty), so a stray prompt on the tray floor gives nothing. Flips and brightness as
for the instance model (``learning.data``). ``--inputs rgbh`` (the default) adds the height
above the tray floor as a fourth channel: from each scene's depth and the floor plane the
cell's calibration gives (``PickingCell.calibrate_floor_plane``, carried in the checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from perception_nodes.core.instance_encoding import preprocess, preprocess_rgbh
from perception_nodes.learning.data import load_training_scene, load_training_scene_with_height
from perception_nodes.learning.engine import (
    fit,
    load_weights,
    run_config,
    save_checkpoint,
    start_run,
    training_parser,
    write_summary,
)
from perception_nodes.learning.export import export_checked
from perception_nodes.learning.model import STRIDE
from perception_nodes.learning.prompt_seg_model import (
    PromptExport,
    PromptSegmenter,
    prompt_mask_loss,
)

PRESETS = {
    "smoke": {"height": 48, "width_px": 64, "steps": 3, "batch": 2, "scenes": 3, "lr": 2e-3},
    "default": {"height": 240, "width_px": 320, "steps": 1000, "batch": 8, "scenes": 600,
                "lr": 2e-3},
}
SPLITS = ("train", "anomaly_train")
INPUTS = {"rgb": 3, "rgbh": 4}  # input kind -> channels
MIN_OBJECT_PX = 30  # objects smaller than this at input size are not prompted


def sample_prompts(labels: np.ndarray, n: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` prompts ``(n, 2) float32`` (row, col) and their target labels ``(n,)``: the
    last on a pixel of no object (label 0), the others at a random pixel of a random object
    of ``MIN_OBJECT_PX`` or more, half of them at least 2 px inside it (or also on no object
    in an empty scene)."""
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    values = values[counts >= MIN_OBJECT_PX]
    points, targets = [], []
    for i in range(n):
        if i == n - 1 or len(values) == 0:
            value = 0
            pool = np.argwhere(labels == 0)
        else:
            value = int(values[rng.integers(len(values))])
            m = (labels == value).astype(np.uint8)
            # half the prompts anywhere on the object: farthest point sampling lands on
            # edges as often as inside, and an edge prompt must still give the whole object
            inner = cv2.erode(m, np.ones((5, 5), np.uint8)) if rng.uniform() < 0.5 else m
            pool = np.argwhere(inner if inner.any() else m)
        if len(pool) == 0:  # an image full of one object: prompt anywhere on it
            pool, value = np.argwhere(np.ones_like(labels, bool)), int(labels[0, 0])
        points.append(pool[rng.integers(len(pool))])
        targets.append(value)
    return np.asarray(points, np.float32), np.asarray(targets, np.int64)


def grid_targets(labels: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(n, h/4, w/4) float32``: the share of each stride-4 cell inside each target object
    (0 everywhere for target 0)."""
    h, w = labels.shape
    out = np.zeros((len(targets), h // STRIDE, w // STRIDE), np.float32)
    for i, value in enumerate(targets):
        if value:
            out[i] = cv2.resize((labels == value).astype(np.float32),
                                (w // STRIDE, h // STRIDE), interpolation=cv2.INTER_AREA)
    return out


class PromptScenes(Dataset):
    """Scenes with seeded prompts; augmentation seeded by ``(seed, epoch, index)``."""

    def __init__(self, paths: list[Path], input_size: tuple[int, int], prompts: int,
                 seed: int = 0, floor_plane: np.ndarray | None = None) -> None:
        if not paths:
            raise FileNotFoundError("no scenes to train on; run `perception dataset`")
        self.paths, self.input_size, self.prompts = paths, input_size, prompts
        self.seed, self.epoch, self.floor_plane = seed, 0, floor_plane

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.floor_plane is None:
            rgb, labels = load_training_scene(self.paths[index], self.input_size, rng)
            image = preprocess(rgb, self.input_size)
        else:
            rgb, labels, height = load_training_scene_with_height(
                self.paths[index], self.input_size, rng, self.floor_plane)
            image = preprocess_rgbh(rgb, height, self.input_size)
        points, targets = sample_prompts(labels, self.prompts, rng)
        return {"image": torch.from_numpy(image[0]),
                "points": torch.from_numpy(points),
                "target": torch.from_numpy(grid_targets(labels, targets))}


def build_parser() -> argparse.ArgumentParser:
    ap = training_parser("perception train-prompt-seg", __doc__, PRESETS, "data/sim", 32,
                         "scenes", "scenes of each split")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per scene")
    ap.add_argument("--inputs", choices=sorted(INPUTS), default="rgbh",
                    help="colour only, or colour and height above the tray floor")
    ap.add_argument("--init", default=None, metavar="CHECKPOINT",
                    help="go on training from this run's weights (same width and inputs)")
    return ap


def calibrated_floor_plane() -> list[float]:
    """The simulated cell's tray floor ``(nx, ny, nz, d)`` in the camera's optical frame, as
    its calibration fits it (one camera pose for every split; the plane is metric, so the
    render size does not matter)."""
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    with PickingCell(split_config("train", 160, 120), 0) as cell:
        return [float(v) for v in cell.calibrate_floor_plane()]


def scene_paths(data: str, scenes: int, smoke: bool, size: tuple[int, int]) -> list[Path]:
    """The first ``scenes`` scenes of each of ``SPLITS`` (the smoke preset renders them)."""
    paths: list[Path] = []
    for split in SPLITS:
        folder = Path(data) / split
        if smoke and len(list(folder.glob("scene_*.npz"))) < scenes:
            from perception_nodes.sim.dataset import generate

            generate(data, split, scenes, width=size[1], height=size[0])
        paths += sorted(folder.glob("scene_*.npz"))[:scenes]
    return paths


def main(argv: list[str] | None = None) -> dict:
    """Train, checkpoint, export; returns the summary (also OUT/summary.json)."""
    args = build_parser().parse_args(argv)
    plane = calibrated_floor_plane() if args.inputs == "rgbh" else None
    cfg = run_config(args, PRESETS, "scenes", prompts=args.prompts, model="prompt_segmenter",
                     splits=list(SPLITS), inputs=args.inputs, floor_plane=plane,
                     init=args.init)
    out = start_run(cfg)
    size = (cfg["height"], cfg["width_px"])
    data = PromptScenes(scene_paths(cfg["data"], cfg["scenes"], cfg["preset"] == "smoke",
                                    size), size, cfg["prompts"], cfg["seed"],
                        None if plane is None else np.asarray(plane))
    model = PromptSegmenter(width=cfg["width"], in_channels=INPUTS[args.inputs]).train()
    if args.init:
        load_weights(model, args.init, cfg, ("width", "inputs"))
    log, steps, seconds = fit(
        model, data, cfg,
        lambda m, b, step: prompt_mask_loss(m(b["image"], b["points"]), b["target"]))
    save_checkpoint(model, cfg, size, steps, out)
    diff = export_prompt_model(model.eval(), size, out / "model.onnx", INPUTS[args.inputs])
    return write_summary(out, cfg, steps, seconds, diff, log)


def export_prompt_model(model: PromptSegmenter, size: tuple[int, int], path: Path,
                        channels: int = 3) -> float:
    """ONNX (``image (1, C, H, W)``, ``points (P, 2)`` -> ``out (P, 1, H/4, W/4)`` logits,
    P dynamic), then one ONNX Runtime check; returns the largest absolute difference."""
    h, w = size
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.standard_normal((1, channels, h, w), dtype=np.float32))
    points = torch.from_numpy((rng.random((5, 2)) * [h, w]).astype(np.float32))
    return export_checked(PromptExport(model), {"image": image, "points": points}, path,
                          dynamic_axes={"points": {0: "P"}, "out": {0: "P"}})

if __name__ == "__main__":
    main()
