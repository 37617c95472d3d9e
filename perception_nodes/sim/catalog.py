"""The item catalogue of the simulated cell: training, held-out and foreign-object sets.

The sets are disjoint by construction, so evaluation on the held-out set measures
generalisation to items never seen in training:

- ``train``: procedural boxes and cylinders of SKU ids 0-499, and ``random_urdfs`` meshes
  000-699, with the training textures;
- ``test`` (held-out): SKU ids 500-799, meshes 700-999, held-out textures;
- ``foreign``: objects that do not belong in a bin of products (a duck, a teddy bear, a mug,
  a ball, a toy brick, a marble): the anomaly issue's held-out foreign objects, for testing;
- ``foreign_train``: other things that do not belong (robot-arm parts, gripper fingers, a
  toy robot): what anomaly models may train on, disjoint from ``foreign``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
_SKU_RANGES = {"train": (0, 500), "test": (500, 800)}
_MESH_RANGES = {"train": (0, 700), "test": (700, 1000)}


@dataclass(frozen=True)
class ItemSpec:
    """One item to place in the cell.

    ``kind`` is ``box`` (``size`` = half extents, m), ``cylinder`` (``size`` = radius,
    half height, 0) or ``urdf`` (``urdf`` path in pybullet_data, ``size[0]`` = global scale).
    ``rgba`` colour in [0, 1]; ``texture`` a pybullet_data image or None.
    """

    kind: str
    name: str
    size: tuple[float, float, float]
    mass: float
    rgba: tuple[float, float, float, float]
    texture: str | None = None
    urdf: str | None = None


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
    if split in ("foreign", "foreign_train"):
        table = FOREIGN_OBJECTS if split == "foreign" else FOREIGN_TRAIN_OBJECTS
        urdf, scale = table[int(rng.integers(len(table)))]
        return ItemSpec("urdf", urdf, (scale, 0.0, 0.0), 0.2, rgba, None, urdf)
    textures = TRAIN_TEXTURES if split == "train" else TEST_TEXTURES
    texture = textures[int(rng.integers(len(textures)))] if rng.uniform() < 0.25 else None
    if rng.uniform() < 0.6:
        sku_id = int(rng.integers(*_SKU_RANGES[split]))
        kind, size, mass = _sku(sku_id)
        return ItemSpec(kind, f"sku{sku_id:03d}", size, mass, rgba, texture)
    mesh = int(rng.integers(*_MESH_RANGES[split]))
    urdf = f"random_urdfs/{mesh:03d}/{mesh:03d}.urdf"
    return ItemSpec("urdf", f"mesh{mesh:03d}", (0.55, 0.0, 0.0), 0.1, rgba, texture, urdf)
