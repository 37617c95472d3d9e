"""Grasp candidates as RViz / Foxglove markers, and the grasp node's text parameters."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from perception_nodes.core.grasp_regions import GraspCandidate, GripperLayout
from perception_nodes.ros.messages import pose_msg

# the default cup layout (core.grasp_regions.GripperLayout, the simulated cell's gripper) as
# the nodes' cup_offsets_m parameter
DEFAULT_CUPS = "; ".join(f"{x:g},{y:g}" for x, y in GripperLayout().cup_offsets_m)


def parse_pairs(text: str) -> np.ndarray:
    """``'a,b; c,d'`` to an ``(N, 2) float64`` array (``''`` gives ``(0, 2)``).

    Raises:
        ValueError: an entry that is not two finite numbers.
    """
    pairs = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        parts = [p.strip() for p in entry.split(",")]
        if len(parts) != 2:
            raise ValueError(f"expected 'x,y' pairs separated by ';', got {entry!r}")
        pair = [float(p) for p in parts]
        if not np.all(np.isfinite(pair)):
            raise ValueError(f"non-finite value in {entry!r}")
        pairs.append(pair)
    return np.asarray(pairs, np.float64).reshape(-1, 2)


def candidate_markers(candidates: list[GraspCandidate], header, layout: GripperLayout
                      ) -> MarkerArray:
    """Per candidate an arrow along the approach and the cup layout as spheres, coloured
    from red to green by quality, and a text with rank, quality, risk and cups; a DELETEALL
    first clears the previous frame's."""
    out = MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])
    for rank, c in enumerate(candidates):
        colour = ColorRGBA(r=float(1.0 - c.quality), g=float(c.quality), b=0.2, a=1.0)
        tip = c.pose[:3, 3]
        tail = tip + 0.08 * c.pose[:3, 2]  # the gripper comes in along -z of the pose
        arrow = Marker(header=header, ns="grasp_candidates", id=rank, type=Marker.ARROW,
                       action=Marker.ADD, color=colour)
        arrow.points = [Point(x=float(tail[0]), y=float(tail[1]), z=float(tail[2])),
                        Point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]))]
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.004, 0.01, 0.015
        text = Marker(header=header, ns="grasp_labels", id=rank, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, color=colour, text=f"#{rank} q={c.quality:.2f} "
                      f"risk={c.risk:.2f} cups={c.expected_cups}")
        text.pose = pose_msg(c.pose)
        text.pose.position.z -= 0.03
        text.scale.z = 0.015
        cups = Marker(header=header, ns="grasp_footprint", id=rank, type=Marker.SPHERE_LIST,
                      action=Marker.ADD, color=colour)
        cups.pose = pose_msg(c.pose)
        cups.scale.x = cups.scale.y = cups.scale.z = 2 * layout.cup_radius_m
        cups.points = [Point(x=float(x), y=float(y), z=0.0) for x, y in layout.cup_offsets_m]
        out.markers.extend([arrow, text, cups])
    return out
