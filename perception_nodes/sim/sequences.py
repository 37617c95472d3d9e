"""Short camera sweeps over a still bin: the monocular depth model's training data.

mono-depth + instances Sec. III-A learns depth from a moving camera's consecutive frames;
in a cell the
moving camera is a wrist camera sweeping over the tray. Each sequence is one settled scene
seen from ``FRAMES`` poses along a straight sweep (``sweep_poses``):

==============  ===================  ==========  ===============================
split           seeds                item set    purpose
==============  ===================  ==========  ===============================
depth_train     600,000 - 609,999    train       self-supervised training
depth_test      700,000 - 709,999    test        Table I (held-out items)
==============  ===================  ==========  ===============================

Each sequence is one ``.npz``: ``rgb (F, H, W, 3) uint8``, ``depth (F, H, W) float32`` m
(NaN invalid; ground truth for evaluation only, never for training), ``labels (F, H, W)
uint16`` (the instance-offset task's supervision), ``poses (F, 4, 4)`` ``T_world_camera``
(ground truth for evaluation only), ``camera_k (3, 3)`` and ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception_nodes.core.camera_model import look_at
from perception_nodes.sim.cell import CellConfig, PickingCell
from perception_nodes.sim.dataset import render_missing

FRAMES = 5
SEQUENCE_SPLITS = {"depth_train": (600_000, 610_000, "train"),
                   "depth_test": (700_000, 710_000, "test")}


def sweep_poses(rng: np.random.Generator, num_frames: int = FRAMES) -> list[np.ndarray]:
    """``T_world_camera`` poses of one sweep: a camera at 0.55-0.9 m, within 5 cm of the
    tray's centre line at the middle frame, translating 4-8 cm a frame in a random direction
    (up to 1 cm a frame in height) with a fixed viewing direction (a little off vertical)
    and a random roll.

    Why these numbers: depth is learned from parallax, the difference in image motion
    between near and far points. An item 10 cm tall seen from 0.85 m, with the camera moving
    3 cm, moves under one pixel more than the floor at 160 px; at 0.6 m and 6 cm it moves
    about three. A fixed viewing direction keeps the motion a translation, which rotation
    cannot imitate."""
    centre = np.array([*rng.uniform(-0.05, 0.05, 2), rng.uniform(0.55, 0.9)])
    heading = rng.uniform(-np.pi, np.pi)
    step = np.array([np.cos(heading), np.sin(heading), 0.0]) * rng.uniform(0.04, 0.08)
    step[2] = rng.uniform(-0.01, 0.01)
    look = np.array([*rng.uniform(-0.08, 0.08, 2), -1.0])  # viewing direction, about down
    roll = rng.uniform(-0.4, 0.4)
    up = np.array([np.sin(roll), np.cos(roll), 0.0])
    mid = (num_frames - 1) / 2
    return [look_at(centre + (k - mid) * step, centre + (k - mid) * step + look, up)
            for k in range(num_frames)]


def sequence_seeds(split: str, count: int, start: int = 0) -> range:
    """Seeds of sequences ``start .. start + count`` of ``split``."""
    if split not in SEQUENCE_SPLITS:
        raise ValueError(f"unknown sequence split {split!r}; expected one of "
                         f"{sorted(SEQUENCE_SPLITS)}")
    lo, hi, _ = SEQUENCE_SPLITS[split]
    if start < 0 or count < 0 or lo + start + count > hi:
        raise ValueError(f"split {split} holds seeds {lo}..{hi - 1}; asked for {count} "
                         f"from offset {start}")
    return range(lo + start, lo + start + count)


def generate_sequences(out_dir: Path | str, split: str, count: int, start: int = 0,
                       width: int = 160, height: int = 120) -> list[Path]:
    """Render ``count`` sequences of ``split`` into ``out_dir/split`` (existing ones kept, so
    an interrupted run resumes); returns their paths."""
    seeds = sequence_seeds(split, count, start)
    config = CellConfig(width=width, height=height, item_split=SEQUENCE_SPLITS[split][2])

    def sweep(cell: PickingCell, seed: int) -> dict[str, np.ndarray]:
        poses = sweep_poses(np.random.default_rng([seed, 1]))
        frames = [cell.render(pose) for pose in poses]
        return {"rgb": np.stack([f.rgb for f in frames]),
                "depth": np.stack([f.depth for f in frames]),
                "labels": np.stack([f.labels for f in frames]), "poses": np.stack(poses),
                "camera_k": cell.intrinsics.matrix}

    return render_missing(Path(out_dir) / split, seeds, config, "sequence", sweep)
