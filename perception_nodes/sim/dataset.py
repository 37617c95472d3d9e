"""Datasets of simulated scenes for training and evaluation (``perception dataset``).

Splits are seed ranges, so a scene is named by its seed alone and can be re-rendered:

=========  ===================  ==========  ==========================================
split      seeds                item set    purpose
=========  ===================  ==========  ==========================================
train      0 - 99,999           train       training
val        100,000 - 109,999    train       model selection, early stopping
test       200,000 - 209,999    test        evaluation on held-out items only
anomaly    300,000 - 309,999    train       anomaly training: 3 objects of
_train                                      ``foreign_train`` among the items
anomaly    400,000 - 409,999    train       anomaly evaluation: 3 held-out foreign
_test                                       objects (duck, teddy, ...) among the
                                            catalogue's items (a cell knows its SKUs)
anomaly    500,000 - 509,999    test        the harder case: held-out foreign objects
_novel                                      among items the models never saw
=========  ===================  ==========  ==========================================

Each scene is one compressed ``.npz`` (``rgb (H, W, 3) uint8``, ``depth (H, W) float32`` m
with NaN invalid, ``labels (H, W) uint16``, ``camera_k (3, 3)``, ``item_names``, ``foreign``
= the labels of foreign objects), written atomically. Ambiguity is built in: half the scenes
hold a cluster of touching items of one colour, items are dropped onto each other, thin flat
packs are in the catalogue, and shadows are rendered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from perception_nodes.sim.cell import CellConfig, PickingCell

SPLIT_SEEDS = {"train": (0, 100_000), "val": (100_000, 110_000), "test": (200_000, 210_000),
               "anomaly_train": (300_000, 310_000), "anomaly_test": (400_000, 410_000),
               "anomaly_novel": (500_000, 510_000)}
SPLIT_ITEMS = {"train": "train", "val": "train", "test": "test", "anomaly_train": "train",
               "anomaly_test": "train", "anomaly_novel": "test"}
# foreign objects per scene and the catalogue set they come from
SPLIT_FOREIGN = {"anomaly_train": (3, "foreign_train"), "anomaly_test": (3, "foreign"),
                 "anomaly_novel": (3, "foreign")}


def split_config(split: str, width: int = 320, height: int = 240) -> CellConfig:
    """The cell configuration that renders scenes of ``split``."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    num_foreign, foreign_split = SPLIT_FOREIGN.get(split, (0, "foreign"))
    return CellConfig(width=width, height=height, item_split=SPLIT_ITEMS[split],
                      num_foreign=num_foreign, foreign_split=foreign_split)


def scene_seeds(split: str, count: int, start: int = 0) -> range:
    """Seeds of scenes ``start .. start + count`` of ``split``; ValueError past its range."""
    lo, hi = SPLIT_SEEDS[split]
    if start < 0 or count < 0 or lo + start + count > hi:
        raise ValueError(f"split {split} holds seeds {lo}..{hi - 1}; asked for {count} "
                         f"from offset {start}")
    return range(lo + start, lo + start + count)


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` beside ``path``, then renamed over it: never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)


def render_missing(folder: Path, seeds: range, config: CellConfig, stem: str,
                   arrays: Callable[[PickingCell, int], dict[str, np.ndarray]]) -> list[Path]:
    """``folder/STEM_SEED.npz`` for every seed, rendering (one cell, reset per seed) only the
    files that do not exist yet, so an interrupted run resumes; ``arrays(cell, seed)`` gives
    what a file holds once the cell shows that seed's settled scene. Returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, cell = [], None
    try:
        for seed in seeds:
            path = folder / f"{stem}_{seed:06d}.npz"
            paths.append(path)
            if path.exists():
                continue
            if cell is None:
                cell = PickingCell(config, seed)
            else:
                cell.reset(seed)
            save_npz_atomic(path, **arrays(cell, seed), seed=np.int64(seed))
    finally:
        if cell is not None:
            cell.close()
    return paths


def _scene_arrays(cell: PickingCell, seed: int) -> dict[str, np.ndarray]:
    frame = cell.render()
    items = sorted(cell.items.values(), key=lambda it: it.label)
    return {"rgb": frame.rgb, "depth": frame.depth, "labels": frame.labels,
            "camera_k": frame.intrinsics.matrix,
            "item_names": np.array([it.spec.name for it in items]),
            "foreign": np.array([it.label for it in items if it.foreign], np.uint16)}


def generate(out_dir: Path | str, split: str, count: int, start: int = 0, width: int = 320,
             height: int = 240) -> list[Path]:
    """Render ``count`` scenes of ``split`` into ``out_dir/split``; existing scenes are kept
    (so an interrupted run resumes). Returns the scene paths."""
    config = split_config(split, width, height)
    folder = Path(out_dir) / split
    seeds = scene_seeds(split, count, start)
    paths = render_missing(folder, seeds, config, "scene", _scene_arrays)
    manifest = {"split": split, "first_seed": seeds.start, "last_seed": seeds.stop - 1,
                "count": count, "cell_config": asdict(config)}
    name = f"manifest_{seeds.start}_{seeds.stop - 1}.json"  # one per chunk: runs may share
    tmp = folder / (name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / name)
    return paths


def load_scene(path: Path | str) -> dict[str, np.ndarray]:
    """One scene's arrays (see the module docstring)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def iter_split(out_dir: Path | str, split: str) -> Iterator[dict[str, np.ndarray]]:
    """Scenes of a generated split, in seed order."""
    for path in sorted((Path(out_dir) / split).glob("scene_*.npz")):
        yield load_scene(path)
