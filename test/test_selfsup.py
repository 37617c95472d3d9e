"""Self-supervised cut-and-paste training (grasp self-supervision Sec. III-B): crop banks,
pasted training
scenes, masks from grasps, and `perception selfsup` end to end on a smoke configuration."""

import json

import numpy as np
import pytest

from perception_nodes.core.cut_paste import ObjectCrop, load_crops, pack_crops
from perception_nodes.eval.selfsup import crop_bank, grasp_masks, run_selfsup, table
from perception_nodes.learning.data import PastedSceneDataset, SceneDataset
from perception_nodes.sim.dataset import save_npz_atomic
from perception_nodes.sim.grasp_episodes import GraspEpisode


def _crop(colour, h=6, w=9):
    mask = np.ones((h, w), bool)
    mask[0, 0] = False
    return ObjectCrop(np.full((h, w, 3), colour, np.uint8), mask)


def test_crop_bank_round_trips_exactly(tmp_path):
    crops = [_crop((255, 0, 0)), _crop((0, 9, 200), 3, 4)]
    save_npz_atomic(tmp_path / "c.npz", **pack_crops(crops))
    back = load_crops(str(tmp_path / "c.npz"))
    assert len(back) == 2 and not list(tmp_path.glob("*.tmp"))
    for a, b in zip(crops, back, strict=True):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.mask, b.mask)
    save_npz_atomic(tmp_path / "empty.npz", **pack_crops([]))
    assert load_crops(str(tmp_path / "empty.npz")) == []


def _scenes(folder, n=3):
    folder.mkdir(parents=True)
    for i in range(n):
        labels = np.zeros((48, 64), np.uint16)
        labels[10:20, 10 + i:20 + i] = 1
        rgb = np.full((48, 64, 3), 60, np.uint8)
        rgb[labels == 1] = (0, 200, 0)
        save_npz_atomic(folder / f"scene_{i:06d}.npz", rgb=rgb, labels=labels,
                        depth=np.ones((48, 64), np.float32))
    return folder


def test_pasted_scenes_are_seeded_per_epoch_and_add_labelled_instances(tmp_path):
    folder = _scenes(tmp_path / "train")
    crops = [_crop((255, 0, 0))]
    data = PastedSceneDataset(folder, (48, 64), crops, max_objects=5, inpaint_px=0, seed=3)
    plain = SceneDataset(folder, (48, 64), augment=True, seed=3)
    again = PastedSceneDataset(folder, (48, 64), crops, max_objects=5, inpaint_px=0, seed=3)
    firsts = [data.scene(i) for i in range(3)]
    for i, (rgb, labels) in enumerate(firsts):
        twin = again.scene(i)
        assert np.array_equal(rgb, twin[0]) and np.array_equal(labels, twin[1])
        base_rgb, base_labels = plain.scene(i)
        added = int(labels.max()) - int(base_labels.max() > 0)
        red = np.all(rgb == (255, 0, 0), axis=-1)
        # without inpainting a pasted object is exactly its crop's colour, under its own label
        assert added >= 0 and (labels[red] > 0).all()
        if added:
            assert red.any()
    data.epoch = 1
    assert any(not np.array_equal(data.scene(i)[1], firsts[i][1]) for i in range(3))
    assert data[0]["image"].shape == (3, 48, 64)
    with pytest.raises(ValueError):
        PastedSceneDataset(folder, (48, 64), [])


def _episode(item_left: bool, seed: int) -> GraspEpisode:
    before = np.full((120, 160, 3), 90, np.uint8)
    before[40:80, 50:100] = (30, 200, 30)
    after = before.copy()
    if item_left:
        after[40:80, 50:100] = 90
    grasp = np.zeros((120, 160), np.uint8)
    grasp[55:65, 70:80] = 1
    visible = np.zeros((120, 160), bool)
    visible[40:80, 50:100] = item_left
    return GraspEpisode(before, after, grasp, visible, visible, np.array([60.0]),
                        int(item_left), seed)


def test_subtraction_masks_are_filtered_and_cut_from_the_before_frame():
    episodes = [_episode(True, 1), _episode(False, 2)]
    masks, kept = grasp_masks(episodes, "subtract")
    assert kept == [True, False] and masks[0][45:75, 55:95].all() and not masks[1].any()
    crops = crop_bank(episodes, masks, kept)
    assert len(crops) == 1
    assert (crops[0].rgb[crops[0].mask] == (30, 200, 30)).all(axis=-1).mean() > 0.9
    _, unfiltered = grasp_masks(episodes, "subtract", use_filter=False)
    assert unfiltered == [True, True]
    assert len(crop_bank(episodes, *grasp_masks(episodes, "subtract", use_filter=False))) == 1
    with pytest.raises(ValueError):
        grasp_masks(episodes, "grasp")  # a model is needed
    with pytest.raises(ValueError):
        grasp_masks(episodes, "optical-flow")


def test_selfsup_runs_end_to_end_on_a_smoke_configuration(tmp_path):
    report = run_selfsup(str(tmp_path / "grasps"), "subtract", None, False, 5, scenes=4,
                         steps=3, threads=1, seed=0, out=str(tmp_path / "run"), count=2,
                         start=5000, eval_scenes=2, data=str(tmp_path / "sim"),
                         preset="smoke")
    assert report["grasps"] == 2 and report["held"] <= 2
    assert report["crops"] == len(load_crops(str(tmp_path / "run" / "crops.npz")))
    cfg = json.loads((tmp_path / "run" / "train" / "summary.json").read_text())["args"]
    assert cfg["paste_crops"].endswith("crops.npz") and cfg["inpaint_px"] == 5
    for key in ("ap", "ap50", "ap75"):
        assert 0.0 <= report["test"][key] <= 100.0
    assert json.loads((tmp_path / "run" / "report.json").read_text())["test"] == report["test"]
    md = table({"rows": {"row": report["test"]}})
    assert md.startswith("| method | AP |") and "| row |" in md
