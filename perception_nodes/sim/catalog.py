"""The item catalogue of the simulated cell: training, held-out and foreign-object sets.

The sets are disjoint by construction, so evaluation on the held-out set measures
generalisation to items never seen in training:

- ``train``: procedural boxes and cylinders of SKU ids 0-499, and ``random_urdfs`` meshes
  000-699, with the training textures;
- ``test`` (held-out): SKU ids 500-799, meshes 700-999, held-out textures;
- ``foreign``: objects that do not belong in a bin of products (a duck, a teddy bear, a mug,
  a ball, a toy brick, a marble), in their own materials: the anomaly issue's held-out
  foreign objects, for testing;
- ``foreign_train``: other things that do not belong (robot-arm and robot-leg parts, gripper
  fingers, a toy robot, a wheel, a traffic cone, a lidar, hand tools), half in their own
  materials and half recoloured: what anomaly models may train on, disjoint from ``foreign``.

Catalogue items are recoloured at random (a product's packaging is not a shape's property);
foreign objects keep the materials their files give them, as real foreign objects do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet_data

SPLITS = ("train", "test", "foreign", "foreign_train")
TRAIN_TEXTURES = ("checker_blue.png", "tex256.png", "cube.png")
TEST_TEXTURES = ("uvmap.png", "jenga/jenga.png", "domino/domino.jpg")
FOREIGN_OBJECTS = (
    ("duck_vhacd.urdf", 0.7),
    ("teddy_vhacd.urdf", 0.9),
    ("objects/mug.urdf", 0.8),
    ("soccerball.urdf", 0.09),
    ("lego/lego.urdf", 1.6),
    ("sphere_small.urdf", 1.2),
)
FOREIGN_TRAIN_OBJECTS = (
    ("xarm/link1.urdf", 0.6),
    ("xarm/link3.urdf", 0.45),
    ("xarm/link5.urdf", 0.6),
    ("gripper/wsg50_one_motor_gripper_left_finger.urdf", 0.8),
    ("pr2_gripper.urdf", 0.4),
    ("r2d2.urdf", 0.12),
    ("sphere8cube.urdf", 0.06),
)
# meshes of pybullet_data as (file, longest side in m): robot parts that fall into bins
FOREIGN_TRAIN_MESHES = (
    ("kuka_iiwa/meshes/link_1.obj", 0.11),
    ("kuka_iiwa/meshes/link_7.obj", 0.07),
    ("laikago/upper_leg_right.obj", 0.12),
    ("laikago/lower_leg3.obj", 0.13),
    ("a1/meshes/hip.obj", 0.07),
    ("a1/meshes/calf.obj", 0.12),
    ("mini_cheetah/meshes/mini_upper_link.obj", 0.11),
    ("racecar/meshes/cone.obj", 0.07),
    ("racecar/meshes/hokuyo.obj", 0.06),
    ("racecar/meshes/left_front_wheel.obj", 0.08),
    ("franka_panda/meshes/visual/hand.obj", 0.11),
    ("franka_panda/meshes/visual/finger.obj", 0.05),
)
# hand tools (screwdriver or pen-like rods): thinner and longer than any catalogue cylinder
_TOOL_RADIUS_M, _TOOL_HALF_LENGTH_M = (0.004, 0.008), (0.05, 0.09)
_SKU_RANGES = {"train": (0, 500), "test": (500, 800)}
_MESH_RANGES = {"train": (0, 700), "test": (700, 1000)}


@dataclass(frozen=True)
class ItemSpec:
    """One item to place in the cell.

    ``kind`` is ``box`` (``size`` = half extents, m), ``cylinder`` (``size`` = radius,
    half height, 0) or ``urdf`` (``urdf`` path in pybullet_data, ``size[0]`` = global scale).
    or ``mesh`` (``mesh`` = an .obj in pybullet_data, ``size[0]`` = scale).
    ``rgba`` colour in [0, 1], or None to keep the file's own materials; ``texture`` a
    pybullet_data image or None.
    """

    kind: str
    name: str
    size: tuple[float, float, float]
    mass: float
    rgba: tuple[float, float, float, float] | None
    texture: str | None = None
    urdf: str | None = None
    mesh: str | None = None


def _sku(sku_id: int) -> tuple[str, tuple[float, float, float], float]:
    """The fixed shape of a procedural SKU: every scene draws the same box for one id."""
    rng = np.random.default_rng(10_000 + sku_id)
    if sku_id % 4 == 3:
        radius, half_h = rng.uniform(0.02, 0.04), rng.uniform(0.015, 0.05)
        return "cylinder", (float(radius), float(half_h), 0.0), float(rng.uniform(0.05, 0.3))
    half = np.sort(rng.uniform(0.012, 0.06, 3))[::-1]
    if sku_id % 7 == 0:
        half[2] = rng.uniform(0.004, 0.008)  # thin items: flat packs and envelopes
    return "box", tuple(float(h) for h in half), float(rng.uniform(0.05, 0.4))


def sample_item(split: str, rng: np.random.Generator,
                colour: np.ndarray | None = None) -> ItemSpec:
    """Draw one item of ``split`` (one of ``SPLITS``) with ``rng``.

    ``colour`` (RGB in [0, 1]) forces a colour, for scenes of touching same-coloured items.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown item split {split!r}; expected one of {SPLITS}")
    rgb = np.asarray(colour if colour is not None else rng.uniform(0.05, 0.95, 3), dtype=float)
    rgba = (*(float(c) for c in rgb), 1.0)
    if split == "foreign":
        urdf, scale = FOREIGN_OBJECTS[int(rng.integers(len(FOREIGN_OBJECTS)))]
        return ItemSpec("urdf", urdf, (scale, 0.0, 0.0), 0.2, None, None, urdf)
    if split == "foreign_train":
        return _foreign_train_object(rng, rgba)
    textures = TRAIN_TEXTURES if split == "train" else TEST_TEXTURES
    texture = textures[int(rng.integers(len(textures)))] if rng.uniform() < 0.25 else None
    if rng.uniform() < 0.6:
        sku_id = int(rng.integers(*_SKU_RANGES[split]))
        kind, size, mass = _sku(sku_id)
        return ItemSpec(kind, f"sku{sku_id:03d}", size, mass, rgba, texture)
    mesh = int(rng.integers(*_MESH_RANGES[split]))
    urdf = f"random_urdfs/{mesh:03d}/{mesh:03d}.urdf"
    return ItemSpec("urdf", f"mesh{mesh:03d}", (0.55, 0.0, 0.0), 0.1, rgba, texture, urdf)


def _foreign_train_object(rng: np.random.Generator,
                          rgba: tuple[float, float, float, float]) -> ItemSpec:
    """One training foreign object: a URDF object, a robot-part mesh or a hand tool."""
    own_material = rng.uniform() < 0.5
    n_urdf, n_mesh = len(FOREIGN_TRAIN_OBJECTS), len(FOREIGN_TRAIN_MESHES)
    pick = int(rng.integers(n_urdf + n_mesh + 2))  # tools twice as likely as one mesh
    if pick < n_urdf:
        urdf, scale = FOREIGN_TRAIN_OBJECTS[pick]
        return ItemSpec("urdf", urdf, (scale, 0.0, 0.0), 0.2,
                        None if own_material else rgba, None, urdf)
    if pick < n_urdf + n_mesh:
        mesh, longest_m = FOREIGN_TRAIN_MESHES[pick - n_urdf]
        scale = longest_m * rng.uniform(0.8, 1.2) / mesh_extent(mesh)
        return ItemSpec("mesh", mesh, (float(scale), 0.0, 0.0), 0.15,
                        None if own_material else rgba, mesh=mesh)
    radius, half_length = rng.uniform(*_TOOL_RADIUS_M), rng.uniform(*_TOOL_HALF_LENGTH_M)
    return ItemSpec("cylinder", "tool", (float(radius), float(half_length), 0.0), 0.1, rgba)


@functools.cache
def mesh_extent(mesh: str) -> float:
    """Longest side (file units) of the axis-aligned box around an .obj in pybullet_data."""
    path = Path(pybullet_data.getDataPath()) / mesh
    with open(path) as fh:
        vertices = np.array([line.split()[1:4] for line in fh if line.startswith("v ")], float)
    if vertices.size == 0:
        raise ValueError(f"{path} has no vertices")
    return float((vertices.max(axis=0) - vertices.min(axis=0)).max())
