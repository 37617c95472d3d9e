"""A multi-cup suction gripper and its vacuum gauge in the simulated cell.

Each cup seals only on a near-planar patch: the cup's centre and rim rays must all land
within the bellows stroke, on a patch whose plane fits the rim to within a tolerance and
faces the cup. The patch may span two flush items at the same height (a seal across the
seam), and then both are held. Sealed cups hold their item through a force-limited
constraint while the arm lifts; what leaves the tray is counted from the physics afterwards,
so a double pick (the gripper straddling two items, or dragging one that rests on another)
is what the simulated world did, never what the labels say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

from perception_nodes.core.grasp_regions import GripperLayout
from perception_nodes.sim.cell import PHYSICS_HZ, Frame, PickingCell

CUP_OPEN, CUP_LEAK, CUP_SEALED = 0, 1, 2
CUP_STATE_NAMES = ("open", "leak", "sealed")
ATMOSPHERE_KPA = 101.325


@dataclass(frozen=True)
class SuctionGripperSpec:
    """Geometry and vacuum of the gripper; cup offsets in the gripper's xy plane (m)."""

    # the layout the perception side plans with (core.grasp_regions), defined once there
    cup_offsets: tuple[tuple[float, float], ...] = GripperLayout().cup_offsets_m
    cup_radius_m: float = GripperLayout().cup_radius_m
    stroke_m: float = GripperLayout().stroke_m
    max_plane_error_m: float = 0.0015
    max_tilt_deg: float = 35.0
    sealed_vacuum_kpa: float = 65.0
    rim_rays: int = 8
    lift_height_m: float = 0.2

    @property
    def num_cups(self) -> int:
        return len(self.cup_offsets)

    @property
    def layout(self) -> GripperLayout:
        """The cup geometry as the grasp planner takes it."""
        return GripperLayout(self.cup_offsets, self.cup_radius_m, self.stroke_m)


@dataclass
class PickOutcome:
    """What a pick did. Arrays are per cup, in ``cup_offsets`` order.

    vacuum_kpa: gauge vacuum below atmosphere (0 = open to air); cup_state: CUP_* codes;
    cup_labels: ground-truth label each cup's centre ray landed on (0 = none/tray);
    lifted_labels: items that left the tray, from the physics.
    """

    vacuum_kpa: np.ndarray
    cup_state: np.ndarray
    cup_labels: np.ndarray
    lifted_labels: tuple[int, ...]
    before: Frame
    after: Frame

    @property
    def num_lifted(self) -> int:
        return len(self.lifted_labels)

    @property
    def double_pick(self) -> bool:
        return self.num_lifted >= 2

    @property
    def success(self) -> bool:
        return self.num_lifted == 1


def classify_cup_contact(points: np.ndarray, bodies: np.ndarray, approach: np.ndarray,
                         contact_distance: np.ndarray, first_contact: float,
                         spec: SuctionGripperSpec) -> tuple[int, float, tuple[int, ...]]:
    """Decide whether one cup seals, from its ray hits.

    A cup seals when its whole lip rests, within the stroke, on a near-planar patch facing
    it, whatever the patch is made of: two flush items at the same height (boxes packed
    side by side, polybags) seal together, as they do in real cells, and a pick there lifts
    both. A lip partly over a gap or a step leaks.

    Args:
        points: ``(K, 3)`` world hit points (m) of the cup's centre ray then its rim rays.
        bodies: ``(K,)`` body id each ray hit, -1 for a miss.
        approach: unit ``(3,)`` direction the gripper moves (towards the surface).
        contact_distance: ``(K,)`` distance along the ray to each hit (m), inf for a miss.
        first_contact: distance at which the first cup of the gripper touched (m).
        spec: gripper spec (stroke, plane tolerance, tilt limit).

    Returns:
        ``(state, share, sealed_bodies)``: CUP_OPEN, CUP_LEAK or CUP_SEALED; the share of the
        cup's rays that rest on the centre ray's body within the stroke (how much of the lip
        touches it); and, when sealed, the bodies under the lip (more than one: a seal
        across flush items), else ``()``.
    """
    reach = first_contact + spec.stroke_m
    touching = (bodies >= 0) & (contact_distance <= reach)
    if not touching[0]:
        return CUP_OPEN, 0.0, ()
    share = float((touching & (bodies == bodies[0])).mean())
    if not touching.all():
        return CUP_LEAK, share, ()
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred)[2][2]
    plane_error = np.abs(centred @ normal).max()
    tilt = np.degrees(np.arccos(min(1.0, abs(float(np.dot(normal, approach))))))
    if plane_error > spec.max_plane_error_m or tilt > spec.max_tilt_deg:
        return CUP_LEAK, share, ()
    return CUP_SEALED, share, tuple(sorted({int(b) for b in bodies}))


def gauge_reading(state: int, share: float, spec: SuctionGripperSpec,
                  rng: np.random.Generator) -> float:
    """Vacuum (kPa below atmosphere) a cup's gauge shows; sensor noise from ``rng``."""
    if state == CUP_SEALED:
        value = spec.sealed_vacuum_kpa + rng.normal(0.0, 0.8)
    elif state == CUP_LEAK:
        value = 2.0 + 14.0 * share**2 + rng.normal(0.0, 0.8)
    else:
        value = 0.3 + rng.normal(0.0, 0.2)
    return float(np.clip(value, 0.0, ATMOSPHERE_KPA))


def _cup_rays(position: np.ndarray, rotation: np.ndarray, spec: SuctionGripperSpec,
              travel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray starts and ends: per cup its centre then ``rim_rays`` rim points, along -z."""
    z = rotation[:, 2]
    angles = np.linspace(0.0, 2.0 * np.pi, spec.rim_rays, endpoint=False)
    rim = np.stack([np.cos(angles), np.sin(angles)], 1) * spec.cup_radius_m
    local = []
    for dx, dy in spec.cup_offsets:
        local.append([dx, dy])
        local.extend(rim + [dx, dy])
    local = np.asarray(local)
    starts = position + local @ rotation[:, :2].T + z * travel_m / 2
    return starts, starts - z * travel_m


def execute_pick(cell: PickingCell, position: np.ndarray, rotation: np.ndarray,
                 spec: SuctionGripperSpec | None = None, pick_index: int = 0) -> PickOutcome:
    """Pick at a world pose: descend along -z of ``rotation`` until contact, seal, lift.

    Args:
        cell: the cell; its scene changes (lifted items are carried out of the tray).
        position: ``(3,)`` world point (m) the gripper centre aims at.
        rotation: ``3x3`` world rotation of the gripper; z points out of the surface (the
            gripper approaches along -z), x/y orient the cup layout.
        spec: gripper; default layout of five cups.
        pick_index: seeds the gauge noise together with the scene seed.
    """
    spec = spec or SuctionGripperSpec()
    cid = cell.client
    rotation = np.asarray(rotation, dtype=float)
    approach = -rotation[:, 2]
    before = cell.render()
    travel = 0.3
    starts, ends = _cup_rays(np.asarray(position, float), rotation, spec, travel)
    hits = p.rayTestBatch(starts.tolist(), ends.tolist(), physicsClientId=cid)
    bodies = np.array([h[0] for h in hits])
    fraction = np.array([h[2] for h in hits])
    points = np.array([h[3] for h in hits])
    distance = np.where(bodies >= 0, fraction * travel, np.inf)
    rays_per_cup = spec.rim_rays + 1
    first_contact = float(distance.min())
    rng = np.random.default_rng([cell.seed, 7919, pick_index])
    states, vacuum, cup_labels, grips = [], [], [], []
    for c in range(spec.num_cups):
        sl = slice(c * rays_per_cup, (c + 1) * rays_per_cup)
        state, share, sealed = classify_cup_contact(points[sl], bodies[sl], approach,
                                                    distance[sl], first_contact, spec)
        states.append(state)
        vacuum.append(gauge_reading(state, share, spec, rng))
        body = int(bodies[sl][0])
        item = cell.items.get(body)
        cup_labels.append(item.label if item is not None and state != CUP_OPEN else 0)
        # the suction holds every item under the lip, each with its share of the force
        for held in (b for b in sealed if b in cell.items):
            mine = bodies[sl] == held
            point = points[sl][0] if held == body else points[sl][mine].mean(axis=0)
            grips.append((held, point, vacuum[-1] * float(mine.mean())))
    lifted = _lift(cell, grips, spec)
    for label in lifted:
        body = next(b for b, it in cell.items.items() if it.label == label)
        cell.remove(body)
    cell.settle(1.0)
    after = cell.render()
    return PickOutcome(np.asarray(vacuum, np.float32), np.asarray(states, np.uint8),
                       np.asarray(cup_labels, np.uint16), tuple(sorted(lifted)), before, after)


def _lift(cell: PickingCell, grips: list, spec: SuctionGripperSpec) -> list[int]:
    """Hold each gripped item at its contact point with the cup's suction force, lift
    straight up, and return the labels of items that rose by over half the lift."""
    cid = cell.client
    start_z = {it.label: p.getBasePositionAndOrientation(b, physicsClientId=cid)[0][2]
               for b, it in cell.items.items()}
    constraints = []
    for body, point, vacuum_kpa in grips:
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=cid)
        inv_pos, inv_orn = p.invertTransform(pos, orn)
        local, _ = p.multiplyTransforms(inv_pos, inv_orn, point.tolist(), [0, 0, 0, 1])
        force = vacuum_kpa * 1000.0 * np.pi * spec.cup_radius_m**2
        cons = p.createConstraint(body, -1, -1, -1, p.JOINT_POINT2POINT, [0, 0, 0], local,
                                  point.tolist(), physicsClientId=cid)
        p.changeConstraint(cons, point.tolist(), maxForce=force, physicsClientId=cid)
        constraints.append((cons, point, force))
    lift_steps, hold_steps = int(0.8 * PHYSICS_HZ), int(0.4 * PHYSICS_HZ)
    for step in range(lift_steps + hold_steps):
        rise = spec.lift_height_m * min(1.0, (step + 1) / lift_steps)
        for cons, point, force in constraints:
            p.changeConstraint(cons, (point + [0.0, 0.0, rise]).tolist(), maxForce=force,
                               physicsClientId=cid)
        p.stepSimulation(physicsClientId=cid)
    lifted = [it.label for b, it in cell.items.items()
              if p.getBasePositionAndOrientation(b, physicsClientId=cid)[0][2]
              > start_z[it.label] + spec.lift_height_m / 2]
    for cons, _, _ in constraints:
        p.removeConstraint(cons, physicsClientId=cid)
    return lifted
