"""The cell file: a ROS 2 parameter file that overlays ``config/perception.yaml`` with one
cell's calibration (floor plane, workspace polygon and the camera they were measured with),
for every node that applies it. Written atomically; read back for ``--check``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from perception_nodes.core.bin_calibration import BinCalibration
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.ros.grasp_messages import parse_pairs

# the nodes that read the calibration (docs/nodes.md)
CALIBRATED_NODES = ("segmentation", "grasp_regions", "anomaly", "depth")


def camera_text(intrinsics: PinholeIntrinsics) -> str:
    """The ``calibration_camera`` parameter of ``intrinsics``: ``'WxH fx fy cx cy'``."""
    i = intrinsics
    return f"{i.width}x{i.height} {i.fx:.2f} {i.fy:.2f} {i.cx:.2f} {i.cy:.2f}"


def calibration_params(cal: BinCalibration, intrinsics: PinholeIntrinsics) -> dict[str, str]:
    """The parameters a calibration sets on each calibrated node."""
    return {"floor_plane": ",".join(f"{v:.6f}" for v in cal.plane),
            "workspace_polygon": "; ".join(f"{u:.4f},{v:.4f}"
                                           for u, v in cal.polygon_fractions()),
            "calibration_camera": camera_text(intrinsics)}


def write_cell_file(path: Path | str, cal: BinCalibration, intrinsics: PinholeIntrinsics,
                    source: str) -> Path:
    """Write the overlay for every calibrated node (atomically: a temporary file renamed
    over the old one); returns the path."""
    path = Path(path)
    params = calibration_params(cal, intrinsics)
    body = {f"/**/{node}": {"ros__parameters": dict(params)} for node in CALIBRATED_NODES}
    header = (f"# The cell's calibration, written by `perception calibrate` from {source}.\n"
              f"# Floor fit rms {cal.rms_m * 1e3:.2f} mm over {cal.floor_px} px; "
              f"{cal.coverage:.0%} of the workspace has floor depth.\n"
              "# Overlay it on the parameter file: `ros2 launch perception "
              "bringup.launch.py cell:=THIS_FILE`\n# or `perception bringup --cell THIS_FILE`.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(header + yaml.safe_dump(body, sort_keys=False))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def read_cell_file(path: Path | str) -> dict[str, str]:
    """The calibration parameters of a cell file (grasp_regions' section, which every
    calibrated node shares). ValueError when it holds none."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    for key, section in data.items():
        if str(key).rstrip("/").rsplit("/", 1)[-1] in CALIBRATED_NODES:
            params = (section or {}).get("ros__parameters", {})
            if "floor_plane" in params:
                return {k: str(v) for k, v in params.items()}
    raise ValueError(f"{path} holds no floor_plane for {CALIBRATED_NODES}")


def stored_plane_and_polygon(params: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """``(plane (4,), polygon (N, 2) image fractions)`` of a cell file's parameters."""
    return parse_plane(params["floor_plane"]), parse_pairs(params.get("workspace_polygon", ""))
