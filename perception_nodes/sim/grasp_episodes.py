"""Labelled grasps in the simulated cell, for grasp segmentation (grasp self-supervision
Sec. IV-A).

Each episode is one pick in a fresh scene: the frame before, the frame after (the lifted
item gone, neighbours that it dragged or that slid shifted by the physics), the grasp mask
of the active cups, the gauge, and the ground truth the robot never sees: the grasped item's
visible mask in the before frame and its amodal mask (the item alone, occluders hidden).
What breaks image subtraction is put in on purpose, seeded per episode: a change of light
between the two frames (gain and offset) in half of them, and a moving specular glare (a
bright blurred ellipse, as a reflection off the tray or a polybag) in half of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from perception_nodes.core.grasp_geometry import cup_footprint_mask
from perception_nodes.core.grasp_regions import plan_grasps
from perception_nodes.sim.cell import PickingCell
from perception_nodes.sim.dataset import save_npz_atomic, scene_seeds, split_config
from perception_nodes.sim.suction import CUP_SEALED, SuctionGripperSpec, execute_pick

HELD_KPA = 40.0  # a cup reading this vacuum holds (the grasp_capture node's default)


@dataclass
class GraspEpisode:
    """``before``/``after`` ``(H, W, 3) uint8``; ``grasp_mask (H, W) uint8``; ``visible`` and
    ``amodal`` ``(H, W) bool`` masks of the lifted item (empty unless exactly one lifted);
    ``vacuum_kpa (n_cups,)``; ``lifted`` item count; ``seed`` of the scene."""

    before: np.ndarray
    after: np.ndarray
    grasp_mask: np.ndarray
    visible: np.ndarray
    amodal: np.ndarray
    vacuum_kpa: np.ndarray
    lifted: int
    seed: int

    @property
    def gauge_success(self) -> bool:
        return bool((self.vacuum_kpa >= HELD_KPA).any())


def _disturb(after: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light change and glare on the after frame (each with probability 1/2)."""
    img = after.astype(np.float32)
    if rng.random() < 0.5:
        img = img * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15)
    if rng.random() < 0.5:
        h, w = after.shape[:2]
        glare = np.zeros((h, w), np.float32)
        centre = (int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.3, 0.7) * h))
        axes = (int(rng.uniform(0.04, 0.1) * w), int(rng.uniform(0.02, 0.06) * h))
        cv2.ellipse(glare, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        glare = cv2.GaussianBlur(glare, (0, 0), max(1.0, axes[1] / 2))
        img = img + glare[..., None] * rng.uniform(80, 160)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


LOOKS = ("classic", "randomized")


def collect_grasps(split: str, count: int, start: int = 0, width: int = 320,
                   height: int = 240, disturb: bool = True, look: str = "classic"
                   ) -> Iterator[GraspEpisode]:
    """``count`` episodes from scenes ``start, start + 1, ...`` of ``split`` (test: held-out
    items); the grasp is the ground-truth planner's top candidate. Scenes with no candidate
    are skipped; every executed pick is yielded (failed ones too, with empty masks).
    ``look``: the first cell's (``classic_SPLIT``), or the split's own randomized bins,
    looks and cameras (``novel``: the held-out domain)."""
    if look not in LOOKS:
        raise ValueError(f"look {look!r} is not one of {LOOKS}")
    spec = SuctionGripperSpec()
    layout = spec.layout
    seeds = iter(scene_seeds(split, 10 * count + 10, start))
    done = 0
    # the classic cell is where the first grasp segmentation models and their tables were
    # made (docs/results/selfsup.md)
    config = split_config(f"classic_{split}" if look == "classic" else split, width, height)
    with PickingCell(config, seed=0) as cell:
        while done < count:
            seed = next(seeds)
            cell.reset(seed)
            frame = cell.render()
            plan = plan_grasps(frame.labels, frame.depth, frame.intrinsics, layout,
                               ignore=cell.outside_tray())
            if not plan.candidates:
                continue
            best = plan.candidates[0]
            body = next(b for b, it in cell.items.items() if it.label == best.instance)
            amodal = cell.silhouette(body)
            pose = frame.camera_pose @ best.pose
            out = execute_pick(cell, pose[:3, 3], pose[:3, :3], spec)
            active = out.cup_state == CUP_SEALED
            grasp = cup_footprint_mask(frame.labels.shape, frame.intrinsics, best.pose,
                                       np.asarray(spec.cup_offsets), spec.cup_radius_m, active)
            one = out.num_lifted == 1
            visible = (out.before.labels == out.lifted_labels[0]) if one else \
                np.zeros(frame.labels.shape, bool)
            rng = np.random.default_rng([seed, 4242])
            after = _disturb(out.after.rgb, rng) if disturb else out.after.rgb
            if one and out.lifted_labels[0] != best.instance:
                amodal = visible  # another item came up than the one aimed at: no amodal
            yield GraspEpisode(out.before.rgb, after, grasp, visible,
                               amodal & one, out.vacuum_kpa, out.num_lifted, seed)
            done += 1


def save_episodes(out_dir: str, split: str, count: int, start: int = 0,
                  look: str = "classic") -> int:
    """Write ``collect_grasps`` episodes as ``out_dir/split/SEED.npz`` (written beside, then
    renamed); returns how many."""
    from pathlib import Path

    folder = Path(out_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for ep in collect_grasps(split, count, start, look=look):
        save_npz_atomic(folder / f"{ep.seed}.npz", before=ep.before, after=ep.after,
                        grasp_mask=ep.grasp_mask, visible=ep.visible, amodal=ep.amodal,
                        vacuum_kpa=ep.vacuum_kpa, lifted=np.int64(ep.lifted),
                        seed=np.int64(ep.seed))
        n += 1
    return n


def load_episodes(folder: str) -> list[GraspEpisode]:
    """The episodes :func:`save_episodes` wrote, in seed order."""
    from pathlib import Path

    out = []
    for path in sorted(Path(folder).glob("*.npz"), key=lambda q: int(q.stem)):
        with np.load(path) as z:
            out.append(GraspEpisode(z["before"], z["after"], z["grasp_mask"], z["visible"],
                                    z["amodal"], z["vacuum_kpa"], int(z["lifted"]),
                                    int(z["seed"])))
    return out


def usable_grasps(episodes: list[GraspEpisode]) -> list[GraspEpisode]:
    """Grasps that lifted exactly one item and that the gauge calls held: the ones a
    labeller would label (grasp self-supervision Sec. IV-A keeps successful grasps only)."""
    return [e for e in episodes if e.lifted == 1 and e.gauge_success and e.visible.any()]
