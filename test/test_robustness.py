"""The robustness breakdown: factor values of a scene's look, item tones, per-group mAP."""

import numpy as np
import pytest

from perception_nodes.eval.robustness import (
    RobustnessTable,
    camera_band,
    item_tone,
    markdown,
    scene_factors,
)
from perception_nodes.sim.scene_style import style_for_seed


def test_item_tone_and_camera_band():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = 230
    rgb[2:, :2] = (200, 30, 30)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    assert item_tone(rgb, mask) == "white"
    mask[:] = False
    mask[2:, 2:] = True
    assert item_tone(rgb, mask) == "black"
    mask[:] = False
    mask[2:, :2] = True
    assert item_tone(rgb, mask) == "other"  # bright but saturated
    assert camera_band(0.5).startswith("low") and camera_band(1.2).startswith("high")
    assert camera_band(0.8).startswith("train")


def test_scene_factors_come_from_the_scenes_look():
    style = style_for_seed("novel", 800_003)
    factors = scene_factors("novel", 800_003)
    assert factors["floor family"] == style.floor_family
    assert factors["depth sensor"] == style.depth_sensor and factors["layout"] == style.layout
    assert factors["camera height"] == camera_band(style.camera_height_m)
    assert scene_factors(None, 3) == {}


def test_each_factor_value_scores_only_its_scenes():
    gt = np.zeros((2, 8, 8), bool)
    gt[0, :4], gt[1, 4:] = True, True
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = 240  # item 1 white, item 2 black
    table = RobustnessTable()
    perfect = (gt.copy(), np.array([0.9, 0.8]))
    merged = (gt.any(0)[None], np.array([0.9]))
    table.add_scene({"floor family": "wood"}, rgb, gt, {"a": perfect, "b": merged})
    table.add_scene({"floor family": "steel"}, rgb, gt, {"a": merged, "b": perfect})
    report = table.report()
    wood, steel = (report["factors"]["floor family"][v] for v in ("wood", "steel"))
    assert wood["scenes"] == steel["scenes"] == 1
    assert wood["map"]["a"] == pytest.approx(1.0) and steel["map"]["b"] == pytest.approx(1.0)
    # a merge has IoU 0.5 with each item: one item at the lowest threshold only
    assert wood["map"]["b"] == steel["map"]["a"] == pytest.approx(0.5 / 10 * 101 / 100, rel=0.02)
    recall = report["item_recall"]
    assert recall["white"]["items"] == recall["black"]["items"] == 2
    assert recall["white"]["recall"] == {"a": 0.5, "b": 0.5}
    text = markdown(report, ["a", "b"])
    assert "| floor family | wood | 1 | 100.0 | 5.0 |" in text
    assert "| white | 2 | 50.0 | 50.0 |" in text
