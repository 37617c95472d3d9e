"""The cell's calibration as node parameters: the tray floor plane, the floor polygon and
the camera they were measured with; and the check that they fit the camera in use."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.floor_plane import parse_plane, share_below_plane
from perception_nodes.core.grasp_regions import WorkspaceMask
from perception_nodes.ros.grasp_messages import parse_pairs
from perception_nodes.ros.params import Param, ParameterValueError


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


# the simulated classic cell's camera (640x480, 45 degree vertical field of view): the
# camera the shipped floor calibration was measured with
SIM_CALIBRATION_CAMERA = "640x480 579.41 579.41 319.5 239.5"
# a calibration holds for a camera whose focal lengths and principal point are within this
# share of the calibrated ones (a recalibrated lens, not another camera)
INTRINSICS_TOLERANCE = 0.02
# frames between two checks of the measured depth against the floor plane (a camera that
# moved is seen within a few seconds; the check is a pass over the whole image)
PLANE_CHECK_EVERY = 10
# share of the bin floor's pixels that may lie 3 cm below the calibrated plane (noise,
# holes at the walls) before the plane is said not to fit
MAX_BELOW_PLANE = 0.2


def parse_calibration_camera(text: str) -> np.ndarray | None:
    """``"WxH fx fy cx cy"`` -> ``(6,)`` array, None for ''. ParameterValueError otherwise."""
    if not text.strip():
        return None
    try:
        size, *rest = text.split()
        w, h = (int(v) for v in size.lower().split("x"))
        values = np.array([w, h, *(float(v) for v in rest)])
    except ValueError as exc:
        raise ParameterValueError(f"calibration_camera must be 'WxH fx fy cx cy', got "
                                  f"{text!r}") from exc
    if values.shape != (6,) or not np.isfinite(values).all() or (values[:4] <= 0).any():
        raise ParameterValueError(f"calibration_camera must be 'WxH fx fy cx cy', got {text!r}")
    return values


class CalibrationCheck:
    """Does the cell's calibration (floor plane, polygon) fit the camera it is applied to?

    ``camera``: the calibrated camera from :func:`parse_calibration_camera` (None: not
    recorded, only the plane is checked). :meth:`problem` names what does not fit, or ''.
    """

    def __init__(self, camera: np.ndarray | None, plane: np.ndarray | None) -> None:
        self.camera, self.plane = camera, plane
        self._calls = 0

    def problem(self, intrinsics: PinholeIntrinsics, depth: np.ndarray | None = None,
                inside: np.ndarray | None = None) -> str:
        if self.camera is not None:
            w, h, fx, fy, cx, cy = self.camera
            got = np.array([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy])
            if (intrinsics.width, intrinsics.height) != (int(w), int(h)) or np.any(
                    np.abs(got - [fx, fy, cx, cy]) > INTRINSICS_TOLERANCE * max(w, h)):
                return (f"the calibration was made for a {int(w)}x{int(h)} camera with fx "
                        f"{fx:.1f}, this camera is {intrinsics.width}x{intrinsics.height} "
                        f"with fx {intrinsics.fx:.1f}: calibrate this cell "
                        "(floor_plane, workspace_polygon, calibration_camera)")
        if self.plane is not None and depth is not None:
            below = share_below_plane(depth, intrinsics, self.plane, inside)
            if below > MAX_BELOW_PLANE:
                return (f"{below:.0%} of the measured bin lies over 3 cm below the calibrated "
                        "floor_plane: the camera moved or the plane is another cell's; "
                        "calibrate again")
        return ""

    def report(self, health, intrinsics: PinholeIntrinsics, depth: np.ndarray | None = None,
               inside: np.ndarray | None = None) -> None:
        """Set (ERROR) or clear the ``calibration`` condition of ``health``. Called per frame:
        the camera is compared every time, the depth against the plane (a pass over the
        image) on the first frame and every ``PLANE_CHECK_EVERY``-th after it."""
        plane_due = self._calls % PLANE_CHECK_EVERY == 0
        self._calls += 1
        problem = self.problem(intrinsics, depth if plane_due else None, inside)
        if not (plane_due or problem):
            return  # the last verdict stands until the plane is checked again
        if problem:
            health.set_condition("calibration", DiagnosticStatus.ERROR, problem)
        else:
            health.clear_condition("calibration")


def calibration_camera_param(default: str = "") -> Param:
    """The ``calibration_camera`` parameter of a node that applies the cell's calibration."""
    return Param("calibration_camera", default, "the camera the floor_plane and "
                 "workspace_polygon were calibrated with, 'WxH fx fy cx cy' (px); another "
                 "camera on the input is ERROR on /diagnostics ('' = not recorded)")


def calibration_check(params: dict, plane: np.ndarray | None) -> CalibrationCheck:
    """The check of a node's ``calibration_camera`` and ``plane`` parameters."""
    return CalibrationCheck(parse_calibration_camera(params["calibration_camera"]), plane)
