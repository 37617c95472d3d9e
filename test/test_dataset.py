"""Simulated datasets: seed ranges per split, held-out items, determinism, atomic files."""

import json

import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics, invert_pose, transform_points
from perception_nodes.sim.catalog import sample_item
from perception_nodes.sim.dataset import (
    SPLIT_SEEDS,
    generate,
    iter_split,
    load_scene,
    scene_seeds,
)
from perception_nodes.sim.sequences import SEQUENCE_SPLITS, generate_sequences, sequence_seeds


def test_split_seed_ranges_are_disjoint_and_bounded():
    # classic_* re-render their namesakes' seeds in the first cell's look; all else is apart
    own = {s: r for s, r in SPLIT_SEEDS.items() if not s.startswith("classic_")}
    ranges = sorted([*own.values(), *(v[:2] for v in SEQUENCE_SPLITS.values())])
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(SPLIT_SEEDS[f"classic_{s}"] == SPLIT_SEEDS[s] for s in ("train", "val", "test"))
    assert scene_seeds("test", 3, 5) == range(200_005, 200_008)
    with pytest.raises(ValueError):
        scene_seeds("val", 20_000)
    with pytest.raises(ValueError):
        generate("unused", "holdout", 1)


def test_generated_scenes_are_deterministic_and_use_the_splits_items(tmp_path):
    paths = generate(tmp_path / "a", "test", 2, width=64, height=48)
    again = generate(tmp_path / "b", "test", 2, width=64, height=48)
    for p, q in zip(paths, again, strict=True):
        a, b = load_scene(p), load_scene(q)
        for key in ("rgb", "depth", "labels"):
            np.testing.assert_array_equal(a[key], b[key])
    scene = load_scene(paths[0])
    assert scene["rgb"].shape == (48, 64, 3) and scene["labels"].dtype == np.uint16
    assert int(scene["seed"]) == 200_000
    rng = np.random.default_rng(0)
    train_names = {sample_item("train", rng).name for _ in range(2000)}
    assert not set(scene["item_names"].tolist()) & train_names
    manifest = json.loads((tmp_path / "a" / "test" / "manifest_200000_200001.json").read_text())
    assert manifest["first_seed"] == 200_000 and manifest["last_seed"] == 200_001
    assert not list((tmp_path / "a" / "test").glob("*.tmp"))
    assert len(list(iter_split(tmp_path / "a", "test"))) == 2


def test_camera_sweeps_are_seeded_and_their_depth_and_poses_agree(tmp_path):
    """What self-supervised depth relies on: a pixel of one frame, lifted with its depth and
    moved by the poses, lands where the next frame sees the same surface."""
    a = generate_sequences(tmp_path / "a", "depth_test", 1, width=64, height=48)
    b = generate_sequences(tmp_path / "b", "depth_test", 1, width=64, height=48)
    sa, sb = load_scene(a[0]), load_scene(b[0])
    assert np.array_equal(sa["rgb"], sb["rgb"]) and np.array_equal(sa["poses"], sb["poses"])
    assert sa["rgb"].shape == (5, 48, 64, 3) and sa["depth"].shape == (5, 48, 64)
    assert int(sa["seed"]) == 700_000
    steps = np.linalg.norm(np.diff(sa["poses"][:, :3, 3], axis=0), axis=1)
    assert np.all((steps > 0.039) & (steps < 0.082))  # the camera moves 4-8 cm a frame
    views = sa["poses"][:, :3, 2]
    assert np.allclose(views, views[0], atol=1e-9)  # a translation: the view keeps its direction
    k = sa["camera_k"]
    intr = PinholeIntrinsics(64, 48, k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    points = intr.depth_to_points(sa["depth"][2]).reshape(-1, 3)
    ok = np.isfinite(points).all(1)
    move = invert_pose(sa["poses"][3]) @ sa["poses"][2]  # camera 2 -> camera 3
    moved = transform_points(move, points[ok])
    uv = np.rint(intr.project(moved)).astype(int)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 48)
    seen = sa["depth"][3][uv[inside, 1], uv[inside, 0]]
    valid = np.isfinite(seen)  # the depth noise model drops pixels at edges
    err = np.abs(seen[valid] - moved[inside][valid, 2])
    assert valid.sum() > 1000 and np.median(err) < 0.003 and (err < 0.01).mean() > 0.9
    with pytest.raises(ValueError):
        sequence_seeds("depth_train", 1, start=10_000)
