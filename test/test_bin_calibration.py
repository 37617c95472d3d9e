"""`perception calibrate`: the bin floor plane and workspace polygon from an empty bin, checked
against the simulated cell's exact floor and walls over several bins and camera poses
(acceptance: plane within 2 mm and 0.5 degree, polygon corners within 1 cm), and the
``--check`` that tells a bumped camera."""

import cv2
import numpy as np
import pytest
import yaml

from perception_nodes.calibration.calibrate import (
    frames_from_folder,
    frames_from_sim,
    run_calibrate,
    run_check,
)
from perception_nodes.calibration.cell_file import CALIBRATED_NODES, read_cell_file
from perception_nodes.core.bin_calibration import (
    _shrink,
    calibrate_bin,
    median_depth,
    plane_difference,
)
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import parse_plane, plane_depth
from perception_nodes.ros.grasp_messages import parse_pairs
from perception_nodes.sim.cell import CellConfig, PickingCell


def test_shrink_moves_every_edge_inwards():
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    np.testing.assert_allclose(_shrink(square, 1.0), [[1, 1], [9, 1], [9, 9], [1, 9]])
    np.testing.assert_allclose(_shrink(square[::-1], -1.0)[::-1],
                               [[-1, -1], [11, -1], [11, 11], [-1, 11]])


def test_median_depth_ignores_holes_and_plane_difference_is_symmetric():
    a = np.array([[1.0, np.nan], [np.nan, np.nan]], np.float32)
    b = np.array([[3.0, 2.0], [np.nan, np.nan]], np.float32)
    out = median_depth([a, b, a])
    assert out[0, 0] == 1.0 and out[0, 1] == 2.0 and np.isnan(out[1, 1])
    p = np.array([0.0, 0.0, -1.0, 1.0])
    q = np.array([0.0, np.sin(np.radians(2)), -np.cos(np.radians(2)), 1.003])
    angle, offset = plane_difference(p, q)
    assert angle == pytest.approx(2.0) and offset == pytest.approx(0.003)


def test_a_synthetic_bin_gives_its_floor_and_walls_exactly():
    cam = PinholeIntrinsics.from_fov(160, 120, 45.0)
    plane = np.array([0.0, 0.0, -1.0, 1.0])  # floor 1 m below the camera
    depth = plane_depth(cam, plane, (120, 160))
    depth[:, :30] = depth[:, 130:] = 0.9  # walls 10 cm high on the left and right
    depth[:20] = depth[100:] = 1.02  # the ground outside, 2 cm lower, top and bottom
    cal = calibrate_bin(depth, cam, margin_m=0.0)
    angle, offset = plane_difference(cal.plane, plane)
    assert angle < 1e-3 and offset < 1e-6 and cal.rms_m < 1e-6
    np.testing.assert_allclose(np.sort(cal.polygon_px[:, 0]), [30, 30, 130, 130], atol=0.6)
    np.testing.assert_allclose(np.sort(cal.polygon_px[:, 1]), [20, 20, 100, 100], atol=0.6)


SCENES = [("train", 0), ("train", 1), ("train", 2), ("novel", 0), ("novel", 2), ("novel", 3)]


@pytest.mark.parametrize("look,seed", SCENES, ids=[f"{k}{s}" for k, s in SCENES])
def test_sim_bins_are_calibrated_within_the_acceptance(look, seed):
    with PickingCell(CellConfig(style_domain=look), seed) as cell:
        cell.stage([], seed)
        depth = median_depth([cell.render().depth for _ in range(3)])
        truth_plane, truth_polygon = cell.floor_plane(), cell.floor_polygon(0.01)
        cal = calibrate_bin(depth, cell.intrinsics, margin_m=0.01)
    angle, offset = plane_difference(cal.plane, truth_plane)
    assert angle < 0.5 and offset < 0.002
    assert len(cal.polygon_px) == 4
    # each true corner's distance to the nearest calibrated one, in metres on the floor
    err_px = max(np.min(np.linalg.norm(cal.polygon_px - c, axis=1)) for c in truth_polygon)
    assert err_px * truth_plane[3] / cell.intrinsics.fx < 0.01
    assert cal.coverage > 0.3  # a dark floor drops much of its depth, yet the walls hold


def test_the_cell_file_overlays_every_calibrated_node_and_check_tells_a_bumped_camera(
        tmp_path):
    frames = frames_from_sim(1, "train", 2)
    out = tmp_path / "cell.yaml"
    report = run_calibrate(frames, out)
    data = yaml.safe_load(out.read_text())
    assert sorted(data) == sorted(f"/**/{n}" for n in CALIBRATED_NODES)
    assert not list(tmp_path.glob("*.tmp"))
    params = read_cell_file(out)
    assert parse_plane(params["floor_plane"]).shape == (4,)
    assert parse_pairs(params["workspace_polygon"]).shape == (4, 2)
    assert report["fit_rms_mm"] < 3.0
    assert run_check(frames, out)["matches"]
    depths, cam, source = frames
    bumped = [d + np.float32(0.02) for d in depths]  # the camera 2 cm further up
    result = run_check((bumped, cam, source), out)
    assert not result["matches"] and "calibrate again" in result["problems"][0]
    other = PinholeIntrinsics(cam.width, cam.height, cam.fx * 1.1, cam.fy * 1.1, cam.cx,
                              cam.cy)
    result = run_check((depths, other, source), out)
    assert not result["matches"] and "made for a" in result["problems"][0]


def test_a_folder_of_depth_pngs_with_camera_info_yaml_is_read(tmp_path):
    cam = PinholeIntrinsics.from_fov(64, 48, 45.0)
    depth = plane_depth(cam, np.array([0.0, 0.0, -1.0, 0.8]), (48, 64))
    cv2.imwrite(str(tmp_path / "0001.png"), np.rint(depth * 1000).astype(np.uint16))
    (tmp_path / "camera_info.yaml").write_text(yaml.safe_dump({
        "image_width": 64, "image_height": 48,
        "camera_matrix": {"rows": 3, "cols": 3, "data": cam.matrix.ravel().tolist()}}))
    frames, intrinsics, _ = frames_from_folder(tmp_path, 5)
    assert len(frames) == 1 and intrinsics.width == 64
    np.testing.assert_allclose(frames[0], depth, atol=6e-4)  # millimetre rounding


def test_the_cell_file_overlays_the_parameter_file(tmp_path):
    from perception_nodes.bringup import load_config

    out = tmp_path / "cell.yaml"
    run_calibrate(frames_from_sim(0, "novel", 1), out)
    names, params = load_config(None, [out])
    assert "grasp_regions" in names
    cell = read_cell_file(out)
    for node in ("segmentation", "grasp_regions"):
        assert params[node]["floor_plane"] == cell["floor_plane"]
        assert params[node]["calibration_camera"] == cell["calibration_camera"]
    assert params["grasp_regions"]["cup_radius_m"] == 0.009  # the rest stays the config's
