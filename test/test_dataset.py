"""Simulated datasets: seed ranges per split, held-out items, determinism, atomic files."""

import json

import numpy as np
import pytest

from perception_nodes.sim.catalog import sample_item
from perception_nodes.sim.dataset import (
    SPLIT_SEEDS,
    generate,
    iter_split,
    load_scene,
    scene_seeds,
)


def test_split_seed_ranges_are_disjoint_and_bounded():
    ranges = sorted(SPLIT_SEEDS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
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
