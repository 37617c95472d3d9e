"""Datasets of simulated scenes for training and evaluation (``perception dataset``).

Splits are seed ranges, so a scene is named by its seed alone and can be re-rendered. The
look of ``train``, ``val``, ``test`` and ``novel`` scenes is randomized per scene
(sim/scene_style.py: bin, prints, tones, light, camera, sensors, layouts); ``novel`` draws
factor values and texture families that no training split uses. The ``classic_*`` splits
are the former ``train``/``val``/``test`` (same seeds, the one grey tray and solid colours of
the first cell), kept to reproduce the results and models made on them; the anomaly and
depth splits keep the classic look too.

==============  ===================  ==========  ========  ===============================
split           seeds                item set    look      purpose
==============  ===================  ==========  ========  ===============================
train           0 - 99,999           train       train     training
val             100,000 - 109,999    train       train     model selection
test            200,000 - 209,999    test        train     held-out items, known looks
novel           800,000 - 809,999    test        novel     held-out items in a held-out domain
novel_cell      850,000 - 859,999    test        novel     the adapting cell's bins, labelled
classic_train   0 - 99,999           train       classic   the first cell's training scenes
classic_val     100,000 - 109,999    train       classic   its model selection
classic_test    200,000 - 209,999    test        classic   its evaluation
anomaly_train   300,000 - 309,999    train       classic   3 ``foreign_train`` objects
anomaly_test    400,000 - 409,999    train       classic   3 held-out foreign objects
anomaly_novel   500,000 - 509,999    test        classic   the same among held-out items
==============  ===================  ==========  ========  ===============================

Each scene is one compressed ``.npz`` (``rgb (H, W, 3) uint8``, ``depth (H, W) float32`` m
with NaN invalid, ``labels (H, W) uint16``, ``camera_k (3, 3)``, ``item_names``, ``foreign``
= the labels of foreign objects, ``camera_pose`` 4x4 ``T_world_camera``, ``floor_polygon``
(4, 2) pixel corners of the bin floor), written atomically.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from perception_nodes.sim.cell import CellConfig, PickingCell

SPLIT_SEEDS = {"train": (0, 100_000), "val": (100_000, 110_000), "test": (200_000, 210_000),
               "novel": (800_000, 810_000), "novel_cell": (850_000, 860_000),
               "classic_train": (0, 100_000),
               "classic_val": (100_000, 110_000), "classic_test": (200_000, 210_000),
               "anomaly_train": (300_000, 310_000), "anomaly_test": (400_000, 410_000),
               "anomaly_novel": (500_000, 510_000)}
SPLIT_ITEMS = {"train": "train", "val": "train", "test": "test", "novel": "test",
               "novel_cell": "test",
               "classic_train": "train", "classic_val": "train", "classic_test": "test",
               "anomaly_train": "train", "anomaly_test": "train", "anomaly_novel": "test"}
# the look's domain (sim/scene_style.py); splits not listed keep the classic look
SPLIT_DOMAIN = {"train": "train", "val": "train", "test": "train", "novel": "novel",
                "novel_cell": "novel"}
# foreign objects per scene and the catalogue set they come from
SPLIT_FOREIGN = {"anomaly_train": (3, "foreign_train"), "anomaly_test": (3, "foreign"),
                 "anomaly_novel": (3, "foreign")}


def split_config(split: str, width: int = 320, height: int = 240) -> CellConfig:
    """The cell configuration that renders scenes of ``split``."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    num_foreign, foreign_split = SPLIT_FOREIGN.get(split, (0, "foreign"))
    return CellConfig(width=width, height=height, item_split=SPLIT_ITEMS[split],
                      num_foreign=num_foreign, foreign_split=foreign_split,
                      style_domain=SPLIT_DOMAIN.get(split))


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
            "foreign": np.array([it.label for it in items if it.foreign], np.uint16),
            "camera_pose": frame.camera_pose,
            "floor_polygon": cell.floor_polygon(0.01).astype(np.float32)}


def generate(out_dir: Path | str, split: str, count: int, start: int = 0, width: int = 320,
             height: int = 240, jobs: int = 1) -> list[Path]:
    """Render ``count`` scenes of ``split`` into ``out_dir/split``; existing scenes are kept
    (so an interrupted run resumes). ``jobs`` processes render contiguous chunks side by
    side (each scene is seeded on its own, so the files do not depend on ``jobs``). Returns
    the scene paths, in seed order."""
    config = split_config(split, width, height)
    folder = Path(out_dir) / split
    seeds = scene_seeds(split, count, start)
    for old in folder.glob("manifest_*.json"):  # never mix scenes of two cells in a folder
        if json.loads(old.read_text()).get("cell_config") != json.loads(
                json.dumps(asdict(config))):
            raise ValueError(f"{folder} holds scenes of another cell configuration ({old}); "
                             f"render into another --out folder")
    jobs = max(1, min(jobs, count))
    if jobs == 1:
        paths = render_missing(folder, seeds, config, "scene", _scene_arrays)
    else:
        bounds = np.linspace(seeds.start, seeds.stop, jobs + 1).astype(int)
        chunks = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            parts = pool.map(_render_chunk, [(folder, c, config) for c in chunks])
            paths = [path for part in parts for path in part]
    manifest = {"split": split, "first_seed": seeds.start, "last_seed": seeds.stop - 1,
                "count": count, "cell_config": asdict(config)}
    name = f"manifest_{seeds.start}_{seeds.stop - 1}.json"  # one per chunk: runs may share
    tmp = folder / (name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / name)
    return paths


def _render_chunk(job: tuple[Path, range, CellConfig]) -> list[Path]:
    folder, seeds, config = job
    return render_missing(folder, seeds, config, "scene", _scene_arrays)


def load_scene(path: Path | str) -> dict[str, np.ndarray]:
    """One scene's arrays (see the module docstring)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def scene_floor_plane(scene: dict[str, np.ndarray]) -> np.ndarray:
    """The calibrated bin floor ``(nx, ny, nz, d)`` in the optical frame of the camera a
    scene was rendered from (``PickingCell.floor_plane``: every randomized scene has its own
    camera pose and so its own plane)."""
    from perception_nodes.core.geometric import floor_plane_from_pose
    from perception_nodes.sim.styled_bin import FLOOR_TOP_M

    return floor_plane_from_pose(scene["camera_pose"], FLOOR_TOP_M)


def scene_height(scene: dict[str, np.ndarray]) -> np.ndarray:
    """``(H, W) float32`` metres above the scene's calibrated floor (NaN where its depth is
    invalid): the height channel RGB-H models read."""
    from perception_nodes.core.camera_model import PinholeIntrinsics
    from perception_nodes.core.floor_plane import height_above_plane

    depth = scene["depth"]
    intrinsics = PinholeIntrinsics.from_matrix(scene["camera_k"], depth.shape[1],
                                               depth.shape[0])
    return height_above_plane(depth, intrinsics, scene_floor_plane(scene))


def iter_split(out_dir: Path | str, split: str) -> Iterator[dict[str, np.ndarray]]:
    """Scenes of a generated split, in seed order."""
    for path in sorted((Path(out_dir) / split).glob("scene_*.npz")):
        yield load_scene(path)
