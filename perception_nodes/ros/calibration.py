"""The cell's calibration as node parameters: the tray floor plane and the floor polygon."""

from __future__ import annotations

import numpy as np

from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.core.grasp_regions import WorkspaceMask
from perception_nodes.ros.grasp_messages import parse_pairs
from perception_nodes.ros.params import ParameterValueError


def parse_floor_calibration(params: dict, optional_plane: bool = False
                            ) -> tuple[np.ndarray | None, WorkspaceMask]:
    """``(plane (4,), outside-the-floor mask)`` from a node's ``floor_plane`` ('nx,ny,nz,d'
    in the camera optical frame) and ``workspace_polygon`` ('u,v; ...' image fractions)
    parameters; ParameterValueError naming both when either is malformed. With
    ``optional_plane`` an empty ``floor_plane`` gives None (a node that can do without)."""
    try:
        text = params["floor_plane"]
        plane = None if optional_plane and not text else parse_plane(text)
        return plane, WorkspaceMask(parse_pairs(params["workspace_polygon"]))
    except ValueError as exc:
        raise ParameterValueError(f"floor_plane / workspace_polygon: {exc}") from exc
