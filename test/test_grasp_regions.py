"""Grasp-safe regions on hand-built depth and label images."""

import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_regions import (
    GraspParams,
    GripperLayout,
    cup_pixel_offsets,
    footprint_risk,
    interior_distance_map,
    outside_polygon,
    plan_grasps,
)
from perception_nodes.core.surface import local_planes

# 100 px per metre at 1 m: a 5-cup layout with 0.1 m offsets spans +-10 px, cups of 3 px
CAM = PinholeIntrinsics(80, 60, 100.0, 100.0, 39.5, 29.5)
LAYOUT = GripperLayout(((0.0, 0.0), (0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1)),
                       cup_radius_m=0.03, stroke_m=0.02)
FLOOR_M, TOP_M = 1.0, 0.9


def _scene(boxes: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(v0, v1, u0, u1)`` 10 cm above a floor at 1 m; labels 1.. in order."""
    labels = np.zeros((60, 80), np.uint16)
    depth = np.full((60, 80), FLOOR_M, np.float32)
    for i, (v0, v1, u0, u1) in enumerate(boxes):
        labels[v0:v1, u0:u1] = i + 1
        depth[v0:v1, u0:u1] = TOP_M
    return labels, depth


def test_local_planes_of_a_tilted_plane_are_exact():
    v, u = np.mgrid[0:60, 0:80]
    # z = 1 + 0.002 u (px): a plane in space, so every window fits it with no residual
    x = (u - CAM.cx) / CAM.fx
    depth = (1.0 / (1.0 - 0.2 * x)).astype(np.float32)  # the plane z = 1 + 0.2 X
    planes = local_planes(depth, CAM, 2)
    inner = planes.valid[5:-5, 5:-5]
    assert inner.all()
    expected = np.array([0.2, 0.0, -1.0]) / np.linalg.norm([0.2, 0.0, -1.0])
    np.testing.assert_allclose(planes.normal[5:-5, 5:-5].reshape(-1, 3),
                               np.broadcast_to(expected, (50 * 70, 3)), atol=1e-4)
    assert np.nanmax(planes.rms[5:-5, 5:-5]) < 1e-4
    np.testing.assert_allclose(planes.tilt_deg()[30, 40], np.degrees(np.arctan(0.2)),
                               atol=0.01)


def test_local_planes_skip_invalid_depth_and_report_steps_as_rough():
    depth = np.full((20, 20), 1.0, np.float32)
    depth[:, 10:] = 0.9
    depth[0:3, 0:3] = np.nan
    cam = PinholeIntrinsics(20, 20, 100.0, 100.0, 9.5, 9.5)
    planes = local_planes(depth, cam, 1, min_points=9)
    assert not planes.valid[0, 0] and not planes.valid[1, 1] and planes.valid[5, 5]
    assert planes.rms[5, 5] < 1e-6 and planes.rms[5, 10] > 0.003  # the 10 cm step
    with pytest.raises(ValueError):
        local_planes(depth, cam, 0)


def test_interior_distance_is_zero_on_borders_and_grows_inside():
    labels = np.zeros((9, 9), np.uint16)
    labels[1:8, 1:8] = 1
    d = interior_distance_map(labels)
    assert d[0, 0] == 0 and d[1, 4] == 0 and d[4, 4] == pytest.approx(3.0)
    labels[4, 4] = 2
    assert interior_distance_map(labels)[4, 4] == 0


def test_cup_offsets_follow_the_pose_convention():
    off = cup_pixel_offsets(LAYOUT, 0.0)
    # x along +u, y = z x x with z towards the camera: +v maps to -y
    np.testing.assert_allclose(off[1], [0.1, -0.1])
    np.testing.assert_allclose(cup_pixel_offsets(LAYOUT, np.pi / 2)[1], [0.1, 0.1], atol=1e-12)


def test_a_box_wide_enough_takes_all_cups_and_is_safe_only_inside():
    labels, depth = _scene([(10, 50, 15, 65)])
    plan = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1))
    assert len(plan.candidates) == 1
    c = plan.candidates[0]
    assert c.instance == 1 and c.expected_cups == 5 and c.cup_sealed.all()
    assert c.quality == pytest.approx(1.0) and c.risk == 0.0
    interior = interior_distance_map(labels)
    assert interior[c.v, c.u] == interior.max()  # the most interior centre
    np.testing.assert_allclose(c.pose[:3, 2], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(c.pose[:3, 3], CAM.backproject(c.u, c.v, TOP_M), atol=1e-6)
    safe = plan.safe_labels
    assert safe.dtype == np.uint16 and set(np.unique(safe)) == {0, 1}
    assert not safe[labels == 0].any()
    # a centre must keep the centre cup (3 px) plus the margin inside the box
    assert not safe[10:14].any() and not safe[:, 15:19].any()


def test_a_coarser_stride_covers_the_same_safe_region_in_blocks():
    labels, depth = _scene([(10, 50, 15, 65), (52, 58, 2, 78)])
    fine = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1)).safe_labels
    coarse = plan_grasps(labels, depth, CAM, LAYOUT,
                         GraspParams(yaw_steps=1, stride_px=2)).safe_labels
    assert ((coarse == 0) | (coarse == labels)).all()
    # every coarse block starts at a safe centre of the fine plan, and covers it
    assert (fine[::2, ::2] == coarse[::2, ::2]).all()
    blocks = coarse.reshape(30, 2, 40, 2)
    assert (blocks == blocks[:, :1, :, :1]).all()  # the box is 2-aligned: whole blocks
    assert abs(int((coarse > 0).sum()) - int((fine > 0).sum())) <= 2 * 80


def test_a_cup_over_a_neighbour_blocks_the_footprint_and_a_deep_floor_does_not():
    # a box 12 px wide: outer cups (10 px off) leave it. Alone, they find the floor 10 cm
    # below (beyond the stroke): safe with 1 cup. With a touching twin of the same height
    # under the outer cups on one side, the footprint is blocked on both.
    labels, depth = _scene([(10, 50, 34, 46)])
    alone = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1))
    assert alone.candidates and alone.candidates[0].expected_cups == 1
    labels, depth = _scene([(10, 50, 34, 46), (10, 50, 46, 58)])
    plan = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1))
    assert not plan.candidates and not plan.safe_labels.any()
    # the twins merged into one mask (an overconfident segmenter): the footprint straddles
    merged = np.where(labels > 0, 1, 0).astype(np.uint16)
    seam = plan_grasps(merged, depth, CAM, LAYOUT, GraspParams(yaw_steps=1)).candidates[0]
    under = labels[seam.cup_pixels[:, 1], seam.cup_pixels[:, 0]]
    assert set(under.tolist()) - {0} == {1, 2}


def test_unclaimed_pixels_within_reach_and_ignored_pixels_block_cups():
    labels, depth = _scene([(10, 50, 15, 65)])
    doubtful = labels.copy()
    doubtful[:, 15:36] = 0  # a confidence mask that gave up the left part of the item
    plan = plan_grasps(doubtful, depth, CAM, LAYOUT, GraspParams(yaw_steps=1))
    for c in plan.candidates:
        assert (doubtful[c.cup_pixels[:, 1], c.cup_pixels[:, 0]] == 1).all()
    ignore = np.zeros_like(labels, bool)
    ignore[:, 40:] = True
    plan = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1), ignore=ignore)
    for c in plan.candidates:
        assert not ignore[c.cup_pixels[:, 1], c.cup_pixels[:, 0]].any()


def test_higher_items_rank_first_and_risk_lowers_quality():
    labels, depth = _scene([(5, 28, 5, 38), (30, 55, 40, 75)])
    depth[labels == 2] = 0.85
    plan = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1))
    assert [c.instance for c in plan.candidates] == [2, 1]
    # samples: in half of them item 2 is split in two along its middle row
    samples = np.stack([labels] * 4).astype(np.uint16)
    samples[:2][:, 42:55, 40:75] = 3
    plan = plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1, max_risk=1.0),
                       sample_labels=samples)
    risky = next(c for c in plan.candidates if c.instance == 2)
    assert risky.risk == pytest.approx(0.5)
    assert plan_grasps(labels, depth, CAM, LAYOUT, GraspParams(yaw_steps=1, max_risk=0.4),
                       sample_labels=samples).candidates[0].instance == 1


def test_footprint_risk_counts_samples_touching_two_instances():
    samples = np.array([[[1, 1], [2, 2]], [[1, 1], [1, 1]], [[0, 0], [2, 2]]], np.uint16)
    pts = np.array([[0, 0], [0, 3]])  # (u, v) in a 4x4 image over the 2x2 grid
    assert footprint_risk(samples, pts, (4, 4)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        footprint_risk(np.zeros((2, 2)), pts, (4, 4))


def test_nothing_to_grasp_and_bad_input():
    labels, depth = _scene([])
    assert plan_grasps(labels, depth, CAM, LAYOUT).candidates == []
    labels, depth = _scene([(10, 50, 15, 65)])
    depth[:] = np.nan
    plan = plan_grasps(labels, depth, CAM, LAYOUT)
    assert plan.candidates == [] and not plan.safe_labels.any()
    with pytest.raises(ValueError):
        plan_grasps(labels, depth[:10], CAM, LAYOUT)
    with pytest.raises(ValueError):
        GripperLayout(((0.01, 0.0),))


def test_outside_polygon():
    out = outside_polygon((10, 10), np.array([[2, 2], [7, 2], [7, 7], [2, 7]]))
    assert not out[2:8, 2:8].any() and out[0].all() and out.sum() == 100 - 36
    assert not outside_polygon((4, 4), np.zeros((0, 2))).any()
    with pytest.raises(ValueError):
        outside_polygon((4, 4), np.zeros((2, 2)))


def test_workspace_mask_scales_fractions_to_each_size_once():
    from perception_nodes.core.grasp_regions import WorkspaceMask

    mask = WorkspaceMask(np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]))
    small, big = mask((8, 8)), mask((80, 80))
    assert not small[4, 4] and small[0, 0] and not big[40, 40] and big[5, 5]
    assert mask((8, 8)) is small  # made once per size
    assert np.array_equal(mask.inside((8, 8)), ~small) and mask.inside((8, 8)) is \
        mask.inside((8, 8))
    assert not WorkspaceMask(np.zeros((0, 2)))((4, 4)).any()
    with pytest.raises(ValueError):
        WorkspaceMask(np.array([[0.1, 0.1], [0.2, 0.2]]))


FLOOR_PLANE = np.array([0.0, 0.0, -1.0, FLOOR_M])  # z = 1 m, normal towards the camera


def test_with_the_floor_plane_the_floor_is_never_an_item():
    # a segmenter that calls a patch of bare floor an item: planned on without the floor
    # plane (it is flat and clear), never with it
    labels = np.zeros((60, 80), np.uint16)
    labels[15:45, 20:60] = 1
    depth = np.full((60, 80), FLOOR_M, np.float32)
    assert plan_grasps(labels, depth, CAM, LAYOUT).candidates
    plan = plan_grasps(labels, depth, CAM, LAYOUT, floor_plane=FLOOR_PLANE)
    assert not plan.candidates and not plan.safe_labels.any()


def test_with_the_floor_plane_a_mask_spilling_onto_the_floor_keeps_cups_on_the_item():
    labels, depth = _scene([(20, 40, 25, 55)])
    labels[10:50, 15:65] = 1  # the mask runs 10 px past the box onto the floor
    plan = plan_grasps(labels, depth, CAM, LAYOUT, floor_plane=FLOOR_PLANE)
    assert plan.candidates
    for c in plan.candidates:
        assert depth[int(round(c.v)), int(round(c.u))] == pytest.approx(TOP_M)
    safe_v, safe_u = np.nonzero(plan.safe_labels)
    assert (depth[safe_v, safe_u] == np.float32(TOP_M)).all()  # no safe centre on the floor
