"""The simulated cell: determinism, item sets, camera geometry, and pick physics."""

import numpy as np
import pytest

from perception_nodes.sim.catalog import (
    FOREIGN_TRAIN_MESHES,
    ItemSpec,
    mesh_extent,
    sample_item,
)
from perception_nodes.sim.cell import CellConfig, PickingCell, orbit_camera_poses
from perception_nodes.sim.suction import (
    CUP_LEAK,
    CUP_OPEN,
    CUP_SEALED,
    SuctionGripperSpec,
    classify_cup_contact,
    execute_pick,
)

SMALL = CellConfig(width=160, height=120, min_items=5, max_items=8)
UP = np.eye(3)  # gripper z = world +z: approach straight down


def _box(half, rgba=(0.8, 0.2, 0.2, 1.0), mass=0.2):
    return ItemSpec("box", "test_box", tuple(half), mass, rgba)


def test_same_seed_same_scene_bit_for_bit():
    frames = []
    for _ in range(2):
        with PickingCell(SMALL, seed=11) as cell:
            frames.append([cell.render(), cell.render()])
    for a, b in zip(frames[0], frames[1], strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.depth, b.depth)  # NaNs compare equal here
    # consecutive frames of one still scene: same ground truth, fresh sensor noise
    np.testing.assert_array_equal(frames[0][0].labels, frames[0][1].labels)
    assert not np.array_equal(frames[0][0].rgb, frames[0][1].rgb)


def test_different_seeds_differ_and_frames_follow_conventions():
    with PickingCell(SMALL, seed=1) as a, PickingCell(SMALL, seed=2) as b:
        fa, fb = a.render(), b.render()
    assert not np.array_equal(fa.labels, fb.labels)
    assert fa.rgb.shape == (120, 160, 3) and fa.rgb.dtype == np.uint8
    assert fa.depth.dtype == np.float32 and fa.labels.dtype == np.uint16
    assert 0.0 < np.isnan(fa.depth).mean() < 0.2  # some invalid pixels, mostly valid
    assert set(np.unique(fa.labels)) - {0} <= {it.label for it in a.items.values()}


def test_item_sets_are_disjoint():
    rng = np.random.default_rng(0)
    names = {s: {sample_item(s, rng).name for _ in range(400)} for s in ("train", "test")}
    assert names["train"] and names["test"]
    assert not names["train"] & names["test"]
    foreign = [sample_item("foreign", rng) for _ in range(60)]
    assert len({f.urdf for f in foreign}) >= 4
    assert not any("random_urdfs" in f.urdf for f in foreign)
    assert all(f.rgba is None for f in foreign)  # held-out foreign objects: own materials
    train_foreign = [sample_item("foreign_train", rng) for _ in range(200)]
    assert not {f.name for f in train_foreign} & {f.name for f in foreign}
    assert {f.kind for f in train_foreign} == {"urdf", "mesh", "cylinder"}
    assert 40 < sum(f.rgba is None for f in train_foreign) < 160
    with pytest.raises(ValueError):
        sample_item("validation", rng)


def test_foreign_meshes_are_scaled_to_their_listed_size():
    rng = np.random.default_rng(3)
    for _ in range(100):
        spec = sample_item("foreign_train", rng)
        if spec.kind == "mesh":
            longest = dict(FOREIGN_TRAIN_MESHES)[spec.mesh]
            size = spec.size[0] * mesh_extent(spec.mesh)
            assert 0.8 * longest - 1e-9 <= size <= 1.2 * longest + 1e-9


def test_a_foreign_mesh_settles_in_the_tray_in_its_own_material():
    spec = ItemSpec("mesh", "wheel", (0.08 / mesh_extent("racecar/meshes/left_front_wheel.obj"),
                                      0.0, 0.0), 0.15, None,
                    mesh="racecar/meshes/left_front_wheel.obj")
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(spec, [0.0, 0.0, 0.08], [0, 0, 0, 1])])
        frame = cell.render()
        (z,) = [p[2] for p in cell.item_positions().values()]
    pixels = frame.rgb[frame.labels == 1]
    assert 80 < len(pixels) and 0.015 < z < 0.08
    assert pixels.std(axis=0).mean() > 10  # textured (rim and tyre), not one flat colour


def test_camera_intrinsics_and_depth_agree_with_the_renderer():
    with PickingCell(CellConfig(width=200, height=150, depth_noise=False), seed=0) as cell:
        cell.stage([(_box([0.04, 0.04, 0.02]), [0.05, -0.03, 0.05], [0, 0, 0, 1])])
        frame = cell.render()
        top = np.array([0.05, -0.03, 0.015 + 0.04])  # tray floor top + box height
        (centre_z,) = [p[2] for p in cell.item_positions().values()]
    cam = np.linalg.inv(frame.camera_pose)
    top[2] = centre_z + 0.02
    p_cam = cam[:3, :3] @ top + cam[:3, 3]
    u, v = np.rint(frame.intrinsics.project(p_cam)[0]).astype(int)
    assert frame.labels[v, u] == 1
    assert frame.depth[v, u] == pytest.approx(p_cam[2], abs=0.002)


def test_clean_single_pick_lifts_one_item_with_all_cups_sealed():
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(_box([0.05, 0.05, 0.02]), [0.0, 0.0, 0.05], [0, 0, 0, 1])])
        outcome = execute_pick(cell, np.array([0.0, 0.0, 0.06]), UP)
        assert outcome.num_lifted == 1 and outcome.success and not outcome.double_pick
        assert (outcome.cup_state == CUP_SEALED).all()
        assert (outcome.vacuum_kpa > 50).all()
        assert len(cell.items) == 0  # carried out of the tray
        assert (outcome.after.labels == 0).all() and (outcome.before.labels == 1).any()


def test_straddling_two_touching_items_is_a_double_pick():
    same = (0.3, 0.5, 0.8, 1.0)
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(_box([0.03, 0.05, 0.02], same), [-0.0305, 0.0, 0.04], [0, 0, 0, 1]),
                    (_box([0.03, 0.05, 0.02], same), [0.0305, 0.0, 0.04], [0, 0, 0, 1])])
        outcome = execute_pick(cell, np.array([0.0, 0.0, 0.06]), UP)
    assert outcome.double_pick and outcome.num_lifted == 2
    assert outcome.cup_state[0] == CUP_SEALED  # the centre cup seals across the seam
    assert set(outcome.cup_labels[1:]) == {1, 2}


def test_pick_on_the_bare_tray_lifts_nothing():
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(_box([0.03, 0.03, 0.02]), [0.12, 0.12, 0.04], [0, 0, 0, 1])])
        outcome = execute_pick(cell, np.array([-0.1, -0.1, 0.02]), UP)
        assert outcome.num_lifted == 0 and not outcome.success
        assert (outcome.cup_labels == 0).all()
        assert len(cell.items) == 1


def test_item_resting_on_the_picked_item_is_dragged_along():
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(_box([0.06, 0.06, 0.015], mass=0.3), [0.0, 0.0, 0.035], [0, 0, 0, 1]),
                    (_box([0.02, 0.02, 0.02], mass=0.05), [0.035, 0.035, 0.075],
                     [0, 0, 0, 1])])
        # grasp the big item beside the small one: cups at -x only
        outcome = execute_pick(cell, np.array([-0.03, -0.03, 0.05]), UP)
    assert outcome.num_lifted == 2 and outcome.double_pick


def test_cup_contact_classification_on_hand_built_hits():
    spec = SuctionGripperSpec()
    approach = np.array([0.0, 0.0, -1.0])
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    rim = np.c_[np.cos(ang), np.sin(ang)] * spec.cup_radius_m
    flat = np.vstack([[0, 0, 0.1], np.c_[rim, np.full(8, 0.1)]])
    bodies = np.full(9, 5)
    dist = np.full(9, 0.05)
    assert classify_cup_contact(flat, bodies, approach, dist, 0.05, spec)[0] == CUP_SEALED
    assert classify_cup_contact(flat, bodies, approach, dist, 0.05, spec)[2] == (5,)
    mixed = bodies.copy()
    mixed[3] = 6  # a flush neighbour under part of the lip: the patch is still planar
    state, share, sealed = classify_cup_contact(flat, mixed, approach, dist, 0.05, spec)
    assert state == CUP_SEALED and share == pytest.approx(8 / 9) and sealed == (5, 6)
    step = flat.copy()
    step[3, 2] -= 0.005  # the neighbour 5 mm lower: the lip straddles a step
    state, share, sealed = classify_cup_contact(step, mixed, approach, dist, 0.05, spec)
    assert state == CUP_LEAK and share == pytest.approx(8 / 9) and sealed == ()
    tilted = flat.copy()
    tilted[:, 2] += 2.0 * tilted[:, 0]  # 63 degrees
    assert classify_cup_contact(tilted, bodies, approach, dist, 0.05, spec)[0] == CUP_LEAK
    missed = bodies.copy()
    missed[0] = -1
    assert classify_cup_contact(flat, missed, approach, dist, 0.05, spec)[0] == CUP_OPEN
    too_deep = np.full(9, 0.05 + spec.stroke_m + 0.01)
    assert classify_cup_contact(flat, bodies, approach, too_deep, 0.05, spec)[0] == CUP_OPEN


def test_moving_camera_sequence_has_known_distinct_poses():
    poses = orbit_camera_poses(6)
    with PickingCell(SMALL, seed=4) as cell:
        frames = [cell.render(pose) for pose in poses[:3]]
    for frame, pose in zip(frames, poses, strict=False):
        np.testing.assert_array_equal(frame.camera_pose, pose)
    assert not np.array_equal(frames[0].labels, frames[1].labels)
    centres = np.array([p[:3, 3] for p in poses])
    assert np.ptp(centres[:, 0]) > 0.1


ONE_CUP = SuctionGripperSpec(cup_offsets=((0.0, 0.0),))


@pytest.mark.parametrize("x, lifted", [(0.002, 2), (-0.05, 1)],
                         ids=["cup on the seam", "cup centred on one box"])
def test_a_cup_seals_across_flush_twins_and_lifts_both(x, lifted):
    """Two boxes of one height packed flush: a cup whose lip spans the seam rests on one
    plane and seals across it (as on real flush boxes and polybags), so it lifts both; the
    same cup on one box lifts one."""
    twin = _box([0.05, 0.05, 0.02], mass=0.1)
    with PickingCell(SMALL, seed=0) as cell:
        cell.stage([(twin, [-0.05, 0.0, 0.036], [0, 0, 0, 1]),
                    (twin, [0.05, 0.0, 0.036], [0, 0, 0, 1])])
        outcome = execute_pick(cell, np.array([x, 0.0, 0.06]), UP, ONE_CUP)
    assert outcome.cup_state[0] == CUP_SEALED
    assert outcome.num_lifted == lifted and outcome.double_pick == (lifted == 2)
