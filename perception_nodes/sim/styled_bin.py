"""A randomized scene's bin, item looks, layout and camera in pybullet, from its SceneStyle.

The bin is built of boxes (a floor and four walls of the style's size and height) so that
floor and walls take their own procedural textures; the floor's top is ``FLOOR_TOP_M`` and
its inner half-size ``style.bin_half_xy_m``. Textures are written once per content (PNG, by
hash) into the cell's own folder and loaded per world.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from perception_nodes.core.camera_model import look_at
from perception_nodes.sim.catalog import ItemSpec, sample_item
from perception_nodes.sim.scene_style import SceneStyle
from perception_nodes.sim.textures import bin_texture, item_print, tone_colour

FLOOR_TOP_M = 0.015
WALL_THICKNESS_M = 0.01
ITEM_LOOK_STREAM = 0x17E7  # item colours, prints and gloss: their own stream per scene
TEXTURE_PX = 256


class TextureCache:
    """Procedural images as pybullet textures: a PNG per content in ``folder``, loaded once
    per world (``reset`` after ``p.resetSimulation``)."""

    def __init__(self, folder: Path, client: int) -> None:
        self.folder, self.client = Path(folder), client
        self.loaded: dict[str, int] = {}

    def reset(self) -> None:
        self.loaded = {}

    def load(self, image: np.ndarray) -> int:
        """Texture id of an ``(H, W, 3) uint8`` RGB image."""
        digest = hashlib.sha1(image.tobytes()).hexdigest()[:20]
        if digest not in self.loaded:
            path = self.folder / f"{digest}.png"
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp.png")
                cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                tmp.replace(path)
            self.loaded[digest] = p.loadTexture(str(path), physicsClientId=self.client)
        return self.loaded[digest]


def _static_box(client: int, half: list[float], centre: list[float], texture: int,
                rgba=(1.0, 1.0, 1.0, 1.0)) -> int:
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba,
                              physicsClientId=client)
    body = p.createMultiBody(0, col, vis, centre, physicsClientId=client)
    p.changeVisualShape(body, -1, textureUniqueId=texture, specularColor=[0.1, 0.1, 0.1],
                        physicsClientId=client)
    p.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=client)
    return body


def build_bin(client: int, style: SceneStyle, textures: TextureCache,
              rng: np.random.Generator) -> list[int]:
    """The ground, the bin floor and its four walls; returns their body ids."""
    hx, hy = style.bin_half_xy_m
    t, h = WALL_THICKNESS_M, style.wall_height_m
    ground = bin_texture("concrete" if style.domain == "novel" else "plastic", rng,
                         TEXTURE_PX, tone_colour("grey", rng))
    floor = bin_texture(style.floor_family, rng, TEXTURE_PX, style.floor_rgb, style.floor_wear)
    wall = bin_texture(style.wall_family, rng, TEXTURE_PX, style.wall_rgb, 0.3)
    wall_id = textures.load(wall)
    bodies = [_static_box(client, [0.9, 0.9, 0.01], [0.0, 0.0, -0.01], textures.load(ground)),
              _static_box(client, [hx + t, hy + t, FLOOR_TOP_M / 2], [0.0, 0.0, FLOOR_TOP_M / 2],
                          textures.load(floor))]
    z = FLOOR_TOP_M + h / 2
    for sx in (-1, 1):
        bodies.append(_static_box(client, [t / 2, hy + t, h / 2], [sx * (hx + t / 2), 0.0, z],
                                  wall_id))
    for sy in (-1, 1):
        bodies.append(_static_box(client, [hx, t / 2, h / 2], [0.0, sy * (hy + t / 2), z],
                                  wall_id))
    return bodies


def camera_pose(style: SceneStyle) -> np.ndarray:
    """``T_world_camera`` of the optical frame: above the floor centre by
    ``camera_height_m``, tilted and rolled as the style says, looking at the floor centre."""
    target = np.array([0.0, 0.0, FLOOR_TOP_M])
    tilt, azimuth = np.radians(style.tilt_deg), np.radians(style.tilt_azimuth_deg)
    offset = style.camera_height_m * np.tan(tilt) * np.array([np.cos(azimuth),
                                                                np.sin(azimuth), 0.0])
    eye = target + offset + np.array([0.0, 0.0, style.camera_height_m])
    roll = np.radians(style.roll_deg)
    return look_at(eye.tolist(), target.tolist(), [float(np.cos(roll)), float(np.sin(roll)),
                                                   0.0])


def floor_corners(style: SceneStyle, margin_m: float) -> np.ndarray:
    """``(4, 3)`` world corners of the bin floor shrunk by ``margin_m`` from the walls."""
    hx, hy = (h - margin_m for h in style.bin_half_xy_m)
    return np.array([[-hx, -hy, FLOOR_TOP_M], [hx, -hy, FLOOR_TOP_M], [hx, hy, FLOOR_TOP_M],
                     [-hx, hy, FLOOR_TOP_M]])


def item_look(spec: ItemSpec, style: SceneStyle, rng: np.random.Generator,
              textures: TextureCache) -> tuple[ItemSpec, int | None, bool]:
    """The item recoloured in one of the style's tones, printed with one of its print
    families (or plain), glossy or matte: ``(spec, texture id or None, glossy)``. Objects
    that keep their own materials (``rgba`` None) keep them."""
    glossy = bool(rng.uniform() < style.glossy_share)
    if spec.rgba is None:
        return spec, None, glossy
    colour = tone_colour(style.tones[int(rng.integers(len(style.tones)))], rng)
    spec = replace(spec, rgba=(*colour, 1.0), texture=None)
    if rng.uniform() >= style.printed_share:
        return spec, None, glossy
    family = style.print_families[int(rng.integers(len(style.print_families)))]
    texture = textures.load(item_print(family, rng, TEXTURE_PX, colour))
    return replace(spec, rgba=(1.0, 1.0, 1.0, 1.0)), texture, glossy


def layout_items(style: SceneStyle, item_split: str, rng: np.random.Generator
                 ) -> list[tuple[ItemSpec, list[float], tuple[float, ...]]]:
    """What to drop where: ``(spec, position, quaternion xyzw)`` per item of the style's
    layout. ``mixed``: anywhere in the bin, one above the other; ``pile``: over a third of
    the floor in layers, so items stack, lean and hide each other; ``same_sku``: copies of
    one boxed product packed flush in rows, in as many layers as they need."""
    hx, hy = (h - 0.03 for h in style.bin_half_xy_m)
    n = style.num_items
    if style.layout == "same_sku":
        spec = sample_item(item_split, rng)
        while spec.kind != "box":
            spec = sample_item(item_split, rng)
        return _packed(spec, n, hx, hy, rng)
    out = []
    spread = (hx, hy) if style.layout == "mixed" else (hx * 0.55, hy * 0.55)
    centre = rng.uniform(-0.3, 0.3, 2) * np.array([hx, hy]) if style.layout == "pile" \
        else np.zeros(2)
    for i in range(n):
        xy = centre + rng.uniform(-1, 1, 2) * spread
        z = FLOOR_TOP_M + 0.06 + (0.03 if style.layout == "mixed" else 0.02) * i
        orn = p.getQuaternionFromEuler(rng.uniform(-np.pi, np.pi, 3).tolist())
        out.append((sample_item(item_split, rng), [float(xy[0]), float(xy[1]), float(z)], orn))
    return out


def _packed(spec: ItemSpec, n: int, hx: float, hy: float, rng: np.random.Generator
            ) -> list[tuple[ItemSpec, list[float], tuple[float, ...]]]:
    """``n`` copies of a box lying flat in rows, 0.5 mm apart, centred in the bin."""
    sx, sy, sz = spec.size
    if sx > sy and hy > hx:  # long side along the bin's long side
        sx, sy = sy, sx
        yaw = np.pi / 2
    else:
        yaw = 0.0
    nx, ny = max(1, int(hx // (sx + 0.00025))), max(1, int(hy // (sy + 0.00025)))
    per_layer = nx * ny
    out = []
    for i in range(n):
        layer, k = divmod(i, per_layer)
        ix, iy = divmod(k, ny)
        x = (ix - (nx - 1) / 2) * (2 * sx + 0.0005)
        y = (iy - (ny - 1) / 2) * (2 * sy + 0.0005)
        z = FLOOR_TOP_M + sz + 0.001 + layer * (2 * sz + 0.002)
        jitter = float(rng.uniform(-0.01, 0.01))  # packed by hand: a degree or less off
        out.append((spec, [float(x), float(y), float(z)],
                    p.getQuaternionFromEuler([0.0, 0.0, yaw + jitter])))
    return out
