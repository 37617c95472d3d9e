"""The training-free geometric segmenter on staged depth: what stands on the floor, cut at
height steps, flush items of one height left together."""

import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics, look_at
from perception_nodes.core.geometric import (
    GeometricParams,
    floor_plane_from_pose,
    height_steps,
    ransac_floor_plane,
    segment_geometric,
)

K = PinholeIntrinsics(width=160, height=120, fx=200.0, fy=200.0, cx=79.5, cy=59.5)
FLOOR = np.array([0.0, 0.0, -1.0, 1.0])  # z = 1 m, normal towards the camera
A = (slice(20, 50), slice(20, 60))  # 5 cm box
B = (slice(20, 50), slice(60, 100))  # 3 cm box touching A: a 2 cm step between them
C = (slice(70, 100), slice(20, 60))  # C and D: 4 cm boxes packed flush, one height
D = (slice(70, 100), slice(60, 100))


def staged() -> np.ndarray:
    depth = np.full((120, 160), 1.0, np.float32)
    depth[A], depth[B], depth[C], depth[D] = 0.95, 0.97, 0.96, 0.96
    depth[30:32, 30:32] = np.nan  # a glint on A
    depth[0:3, :] = np.nan  # an invalid band at the border
    return depth


def test_boxes_of_different_heights_split_and_flush_boxes_of_one_height_stay_together():
    labels, scores = segment_geometric(staged(), K, FLOOR)
    assert labels.dtype == np.uint16 and labels.max() == 3 and scores.shape == (3,)
    a, b, cd = (np.bincount(labels[r].ravel(), minlength=4).argmax() for r in (A, B, C))
    assert len({a, b, cd}) == 3 and 0 not in (a, b, cd)
    assert (labels[D] == cd).mean() > 0.95  # no step between C and D: one instance
    assert (labels[A] == a).mean() > 0.95 and (labels[B] == b).mean() > 0.9
    assert labels[30, 30] == a  # the glint on A is bridged, not a hole in the mask
    floor = np.ones(labels.shape, bool)
    for r in (A, B, C, D):
        floor[r] = False
    assert (labels[floor] == 0).all()  # the floor and the invalid band are no item
    assert ((scores > 0) & (scores <= 1)).all()


def test_a_workspace_keeps_walls_and_outside_out_and_low_things_are_floor():
    depth = staged()
    depth[:, 140:] = 0.85  # a wall 15 cm tall at the side
    depth[105:110, 20:40] = 0.995  # a 5 mm flat pack or label: below min_height_m
    workspace = np.zeros(depth.shape, bool)
    workspace[:, :130] = True
    labels, _ = segment_geometric(depth, K, FLOOR, workspace=workspace)
    assert (labels[:, 130:] == 0).all() and (labels[105:110, 20:40] == 0).all()
    assert labels.max() == 3


def test_height_steps_cut_at_steps_not_along_slopes():
    depth = np.full((20, 40), 1.0, np.float32)
    depth[:, 20:] = 0.95  # a 5 cm step at column 20
    height = 1.0 - depth
    steps = height_steps(height, depth, K, GeometricParams())
    assert steps[:, 19:21].all()  # both sides of the step
    assert not steps[:, :16].any() and not steps[:, 24:].any()  # flat away from it
    ramp = np.tile(1.0 - 0.004 * np.arange(40, dtype=np.float32), (20, 1))  # 4 mm a pixel
    assert not height_steps(1.0 - ramp, ramp, K, GeometricParams()).any()


def test_the_floor_plane_from_one_frame_and_from_the_camera_pose():
    plane = ransac_floor_plane(staged(), K, np.random.default_rng(0))
    np.testing.assert_allclose(plane, FLOOR, atol=1e-4)
    pose = look_at([0.1, 0.0, 0.9], [0.0, 0.0, 0.015], [0.0, 1.0, 0.0])
    plane = floor_plane_from_pose(pose, 0.015)
    assert plane[3] == pytest.approx(np.linalg.norm([0.1, 0.0, 0.885]) *
                                     0.885 / np.linalg.norm([0.1, 0.0, 0.885]))
    assert plane[2] < 0  # the floor faces the camera
    with pytest.raises(ValueError):
        ransac_floor_plane(np.full((10, 10), np.nan, np.float32), K, np.random.default_rng(0))


def test_nothing_standing_gives_no_instance():
    labels, scores = segment_geometric(np.full((120, 160), 1.0, np.float32), K, FLOOR)
    assert labels.max() == 0 and scores.size == 0
