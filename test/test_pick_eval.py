"""Closed-loop pick evaluation: statistics exactly, and a two-pick run in the sim cell."""

import json

import pytest

from perception_nodes.eval.pick_eval import (
    PickRecord,
    by_layout,
    layout_table,
    pick_table,
    run_configuration,
    run_pick_eval,
    summarise,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_summary_counts_outcomes_from_the_physics():
    recs = [PickRecord("x", 1, 0, True, lifted=1, sealed_cups=3, perception_s=0.5),
            PickRecord("x", 1, 1, True, lifted=2, sealed_cups=5, perception_s=0.5),
            PickRecord("x", 2, 0, True, lifted=0, non_object=True, perception_s=0.5),
            PickRecord("x", 3, 0, False, perception_s=0.5)]
    s = summarise(recs, bootstrap=50)
    assert s["picks"] == 3 and s["scenes"] == 3 and s["no_grasp_frames"] == 1
    assert s["success"]["count"] == 1 and s["double_pick"]["count"] == 1
    assert s["non_object"]["count"] == 1 and s["nothing_lifted"]["count"] == 1
    assert s["sealed_cups"]["mean"] == pytest.approx(8 / 3)
    # one success in 2 s of perception (the frame without a grasp counts too)
    assert s["picks_per_hour_perception"]["value"] == pytest.approx(1800.0)
    assert "| x | 3 | 33.3 [" in pick_table({"configurations": {"x": s}})


def test_same_sku_picks_get_their_own_table():
    from perception_nodes.sim.scene_style import style_for_seed

    seeds = range(800_000, 800_040)
    same = [s for s in seeds if style_for_seed("novel", s).layout == "same_sku"][:2]
    mixed = [s for s in seeds if style_for_seed("novel", s).layout == "mixed"][:1]
    recs = [PickRecord("x", same[0], 0, True, lifted=2, sealed_cups=5),
            PickRecord("x", same[1], 0, True, lifted=1, sealed_cups=4),
            PickRecord("x", mixed[0], 0, True, lifted=1, sealed_cups=3)]
    groups = by_layout(recs, "novel")
    assert sorted(groups) == ["mixed", "same_sku"] and len(groups["same_sku"]) == 2
    report = {"configurations": {"x": {"by_layout": {
        k: summarise(v, bootstrap=10) for k, v in groups.items()}}}}
    row = next(line for line in layout_table(report).splitlines() if line.startswith("| x"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == "2" and cells[3].startswith("50.0 [")  # one success in two picks
    assert cells[4].startswith("50.0 [") and cells[5] == "4.50"  # one double pick


def test_two_picks_in_the_sim_cell_are_reproducible(tmp_path):
    # the first cell's look, where ground-truth masks and the sensor's depth plan clean picks
    first = run_configuration("ground_truth", 2, picks_per_scene=2, split="classic_test")
    again = run_configuration("ground_truth", 2, picks_per_scene=2, split="classic_test")
    strip = [(r.scene_seed, r.pick, r.executed, r.lifted, r.sealed_cups) for r in first]
    assert strip == [(r.scene_seed, r.pick, r.executed, r.lifted, r.sealed_cups)
                     for r in again]
    done = [r for r in first if r.executed]
    assert len(done) == 2 and all(r.expected_cups >= 1 for r in done)
    # ground-truth masks on the held-out scenes: the planner's footprint lifts one item
    assert all(r.lifted == 1 for r in done)
    report = run_pick_eval(["confidence_mask"], 1, picks_per_scene=1, out_dir=str(tmp_path))
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["configurations"]["confidence_mask"]["picks"] == 1
    assert report["configurations"]["confidence_mask"]["picks"] == 1
    main_table = (tmp_path / "table.md").read_text().split("same-SKU")[0]
    assert main_table.count("confidence_mask") == 1
    with pytest.raises(ValueError):
        run_pick_eval(["no_such_mode"], 1)


def test_picks_can_plan_on_monocular_depth(smoke_models):
    records = run_configuration("ground_truth", 1, picks_per_scene=1,
                                models_dir=str(smoke_models), depth_source="mono")
    assert records and records[0].scene_seed == 200_000
    # an untrained depth model: whatever it plans, the physics decides the outcome
    assert all(r.lifted >= 0 for r in records)
    with pytest.raises(ValueError, match="depth source"):
        run_pick_eval(["ground_truth"], 1, depth_source="stereo")


def test_the_geometric_mode_plans_picks_from_depth_alone():
    records = run_configuration("geometric", 1, picks_per_scene=1, split="classic_test")
    assert records[-1].executed and records[-1].expected_cups >= 1
    assert records[-1].lifted >= 1  # it found something standing on the floor and lifted it
