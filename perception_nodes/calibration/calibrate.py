"""`perception calibrate`: depth frames of the empty bin (live topics, a bag, a folder, or the
simulated cell) -> the cell file; ``--check`` tells whether the scene still matches it.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from perception_nodes.calibration.cell_file import (
    calibration_params,
    read_cell_file,
    stored_plane_and_polygon,
    write_cell_file,
)
from perception_nodes.core.bin_calibration import (
    BinCalibration,
    calibrate_bin,
    median_depth,
    plane_difference,
)
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.conventions import depth_mm_to_m, invalidate_unmeasurable
from perception_nodes.core.floor_plane import fit_floor_plane, height_above_plane
from perception_nodes.core.grasp_regions import outside_polygon
from perception_nodes.ros.calibration import CalibrationCheck, parse_calibration_camera
from perception_nodes.ros.image_conversion import image_to_depth_m
from perception_nodes.ros.messages import intrinsics_from_camera_info

Frames = tuple[list[np.ndarray], PinholeIntrinsics, str]
# a stored calibration still holds when the floor seen now lies within these of it
CHECK_MAX_ANGLE_DEG = 1.0
CHECK_MAX_OFFSET_M = 0.005
CHECK_MAX_BELOW = 0.05  # share of the workspace measured over 1 cm below the stored floor


def frames_from_bag(bag: Path | str, depth_topic: str, info_topic: str, count: int) -> Frames:
    """The first ``count`` depth frames of a bag (rosbags reader: MCAP or sqlite3) and the
    camera_info of the first of them."""
    from perception_nodes.ros.bags import deserialize, read_bag

    frames, intrinsics = [], None
    for topic, msgtype, _, raw in read_bag(bag, [depth_topic, info_topic]):
        msg = deserialize(raw, msgtype)
        if topic == info_topic and intrinsics is None:
            intrinsics = intrinsics_from_camera_info(msg)
        elif topic == depth_topic and len(frames) < count:
            frames.append(image_to_depth_m(msg))
        if intrinsics is not None and len(frames) >= count:
            break
    if intrinsics is None or not frames:
        raise ValueError(f"{bag}: no {depth_topic} frames with {info_topic} in it")
    return frames, intrinsics, f"bag {bag} ({depth_topic}, {len(frames)} frames)"


def read_camera_info_yaml(path: Path) -> PinholeIntrinsics:
    """Intrinsics from a camera_calibration YAML (``image_width``, ``image_height``,
    ``camera_matrix.data``), as ROS camera drivers store it."""
    data = yaml.safe_load(path.read_text())
    k = np.asarray(data["camera_matrix"]["data"], float).reshape(3, 3)
    return PinholeIntrinsics.from_matrix(k, int(data["image_width"]), int(data["image_height"]))


def frames_from_folder(folder: Path | str, count: int) -> Frames:
    """Depth frames from a folder: ``*.png`` 16-bit millimetres or ``*.npy`` metres, with
    ``camera_info.yaml`` beside them."""
    folder = Path(folder)
    info = folder / "camera_info.yaml"
    if not info.is_file():
        raise ValueError(f"{folder} has no camera_info.yaml")
    frames = []
    for path in sorted(folder.glob("*.png"))[:count] or sorted(folder.glob("*.npy"))[:count]:
        if path.suffix == ".npy":
            depth = np.load(path).astype(np.float32)
        else:
            raw = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
            if raw is None or raw.dtype != np.uint16:
                raise ValueError(f"{path} is not a 16-bit depth PNG (millimetres)")
            depth = depth_mm_to_m(raw)
        frames.append(invalidate_unmeasurable(depth))
    if not frames:
        raise ValueError(f"{folder} has no depth frames (*.png, *.npy)")
    return frames, read_camera_info_yaml(info), f"folder {folder} ({len(frames)} frames)"


def frames_from_sim(seed: int, look: str, count: int) -> Frames:
    """The simulated cell's empty bin (scene ``seed`` of look ``look``): to try the command
    without a robot, and to test it against the scene's exact floor and walls."""
    from perception_nodes.sim.cell import CellConfig, PickingCell

    with PickingCell(CellConfig(style_domain=None if look == "classic" else look),
                     seed) as cell:
        cell.stage([], seed)
        frames = [cell.render().depth for _ in range(count)]
        return frames, cell.intrinsics, f"the simulated cell, look {look}, scene {seed}"


def frames_from_topics(depth_topic: str, info_topic: str, count: int,
                       timeout_s: float = 30.0) -> Frames:
    """``count`` frames from a live depth camera (reliable subscription; a best-effort
    driver needs its QoS set reliable or a relay)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = Node("perception_calibrate")
    got: dict[str, list] = {"depth": [], "info": []}
    node.create_subscription(Image, depth_topic, got["depth"].append, 10)
    node.create_subscription(CameraInfo, info_topic, got["info"].append, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end and (len(got["depth"]) < count or not got["info"]):
            executor.spin_once(timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if len(got["depth"]) < count or not got["info"]:
        raise ValueError(f"in {timeout_s:.0f} s: {len(got['depth'])} of {count} frames on "
                         f"{depth_topic}, {len(got['info'])} on {info_topic} (check the "
                         "topic names, `perception doctor`, and that the camera publishes)")
    return ([image_to_depth_m(m) for m in got["depth"][:count]],
            intrinsics_from_camera_info(got["info"][0]),
            f"topics {depth_topic} ({count} frames)")


def calibration_report(cal: BinCalibration, intrinsics: PinholeIntrinsics, source: str
                       ) -> dict:
    """What was measured, and the parameters written."""
    return {"source": source, "plane": [round(float(v), 6) for v in cal.plane],
            "fit_rms_mm": round(cal.rms_m * 1e3, 2), "floor_px": cal.floor_px,
            "workspace_coverage": round(cal.coverage, 3),
            "workspace_corners_px": np.round(cal.polygon_px, 1).tolist(),
            "params": calibration_params(cal, intrinsics)}


def run_calibrate(frames: Frames, out: Path | str, margin_m: float = 0.01) -> dict:
    """Calibrate from ``frames`` and write the cell file ``out``; the report."""
    depths, intrinsics, source = frames
    cal = calibrate_bin(median_depth(depths), intrinsics, margin_m=margin_m)
    path = write_cell_file(out, cal, intrinsics, source)
    return {**calibration_report(cal, intrinsics, source), "cell_file": str(path)}


def run_check(frames: Frames, cell_file: Path | str) -> dict:
    """Does the scene in ``frames`` (empty or not) still match the stored calibration? The
    camera must be the calibrated one; inside the stored workspace, at most
    ``CHECK_MAX_BELOW`` of the depth may lie over 1 cm below the stored floor (nothing lies
    under a bin floor: the camera moved), and the floor seen now (points within 1 cm of it)
    must lie within ``CHECK_MAX_ANGLE_DEG`` and ``CHECK_MAX_OFFSET_M`` of it."""
    depths, intrinsics, source = frames
    params = read_cell_file(cell_file)
    plane, polygon = stored_plane_and_polygon(params)
    depth = median_depth(depths)
    problems = []
    camera = parse_calibration_camera(params.get("calibration_camera", ""))
    problem = CalibrationCheck(camera, None).problem(intrinsics)
    if problem:
        problems.append(problem)
        return {"source": source, "cell_file": str(cell_file), "matches": False,
                "problems": problems}
    h, w = depth.shape
    inside = ~outside_polygon((h, w), polygon * [w, h]) if len(polygon) else np.ones((h, w),
                                                                                     bool)
    height = height_above_plane(depth, intrinsics, plane)
    valid = inside & np.isfinite(height)
    n = max(int(valid.sum()), 1)
    below = float((height[valid] < -0.01).sum() / n)
    near = valid & (np.abs(height) < 0.01)
    report = {"source": source, "cell_file": str(cell_file), "below_share": round(below, 3),
              "floor_seen_share": round(float(near.sum() / n), 3)}
    if below > CHECK_MAX_BELOW:
        problems.append(f"{below:.0%} of the workspace lies over 1 cm below the stored floor: "
                        "the camera or the bin moved; calibrate again")
    if near.sum() >= 500:
        seen = fit_floor_plane(intrinsics.depth_to_points(depth)[near])
        angle, offset = plane_difference(seen, plane)
        report.update(angle_deg=round(angle, 3), offset_mm=round(offset * 1e3, 2))
        if angle > CHECK_MAX_ANGLE_DEG or offset > CHECK_MAX_OFFSET_M:
            problems.append(f"the floor seen now is {angle:.2f} deg and {offset * 1e3:.1f} mm "
                            "from the stored one: calibrate again")
    else:
        report["note"] = "the floor is hidden (a full bin): only the depth below it is checked"
    return {**report, "matches": not problems, "problems": problems}
