"""A seeded pybullet bin-picking cell: a tray of items under an overhead RGB-D camera.

The same seed gives the same scene, bit for bit: every random draw comes from a generator
seeded by the scene seed, each cell owns its own pybullet client, and frame noise is seeded
by ``(seed, frame index)``. Frames follow ``perception_nodes.core.conventions``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

from perception_nodes.core.camera_model import (
    PinholeIntrinsics,
    invert_pose,
    look_at,
    transform_points,
)
from perception_nodes.core.geometric import floor_plane_from_pose
from perception_nodes.core.grasp_regions import outside_polygon
from perception_nodes.sim import styled_bin
from perception_nodes.sim.catalog import ItemSpec, sample_item
from perception_nodes.sim.scene_style import SceneStyle, style_for_seed
from perception_nodes.sim.sensor_models import ColourCamera, DepthSensor
from perception_nodes.sim.sensor_noise import DepthNoiseModel, add_rgb_noise
from perception_nodes.sim.styled_bin import TextureCache

TRAY_URDF = "tray/traybox.urdf"
TRAY_HALF_WIDTH_M = 0.18  # where item centres are dropped; the tray floor is 0.6 m wide
# the sloped walls of tray/traybox.urdf meet the floor 0.209 m from the centre, floor top 15 mm
TRAY_FLOOR_HALF_M, TRAY_FLOOR_TOP_M = 0.209, 0.015
PHYSICS_HZ = 240.0
NEAR_M, FAR_M = 0.1, 2.0


@dataclass(frozen=True)
class CellConfig:
    """What a scene holds and how the camera sees it."""

    width: int = 640
    height: int = 480
    fov_y_deg: float = 45.0
    camera_height_m: float = 0.95
    min_items: int = 5
    max_items: int = 30
    item_split: str = "train"
    num_foreign: int = 0
    foreign_split: str = "foreign"  # catalogue set the foreign objects come from
    same_colour_cluster_prob: float = 0.5
    rgb_noise_sigma: float = 2.0
    depth_noise: bool = True
    shadows: bool = True
    settle_max_s: float = 4.0
    # None: the classic look (one grey tray, solid colours, fixed camera and light); "train"
    # or "novel": every scene's look drawn from that domain (sim/scene_style.py), and the
    # item count from its layout (min_items and max_items then do not apply)
    style_domain: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_items <= self.max_items:
            raise ValueError(f"need 1 <= min_items <= max_items, got {self.min_items}, "
                             f"{self.max_items}")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image too small: {self.width}x{self.height}")
        if self.style_domain not in (None, "train", "novel"):
            raise ValueError(f"style_domain must be None, 'train' or 'novel', got "
                             f"{self.style_domain!r}")
        if self.foreign_split not in ("foreign", "foreign_train"):
            raise ValueError(f"foreign_split must be 'foreign' or 'foreign_train', got "
                             f"{self.foreign_split!r}")


@dataclass
class Frame:
    """One RGB-D frame with ground truth.

    rgb ``(H, W, 3) uint8``; depth ``(H, W) float32`` metres (NaN invalid); labels
    ``(H, W) uint16`` ground-truth instances (0 none, foreign objects included);
    camera_pose ``T_world_camera`` 4x4 (optical frame); index counts frames of this cell.
    """

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    camera_pose: np.ndarray
    intrinsics: PinholeIntrinsics
    index: int


@dataclass
class Item:
    """A body in the cell and its ground-truth instance label."""

    body: int
    label: int
    spec: ItemSpec
    foreign: bool = False
    glossy: bool = False


@dataclass
class _Render:
    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    pose: np.ndarray = field(repr=False)
    glossy: np.ndarray | None = None  # (H, W) bool under glossy items; None: none shows


class PickingCell:
    """The simulated cell. Create one per scene or call :meth:`reset` with a new seed."""

    def __init__(self, config: CellConfig | None = None, seed: int = 0) -> None:
        self.config = config or CellConfig()
        self.intrinsics = PinholeIntrinsics.from_fov(
            self.config.width, self.config.height, self.config.fov_y_deg)
        self.home_camera_pose = look_at([0.0, 0.0, self.config.camera_height_m],
                                        [0.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        self.depth_noise = DepthNoiseModel()
        self.style: SceneStyle | None = None
        self.client = p.connect(p.DIRECT)
        self._texture_dir = Path(tempfile.mkdtemp(prefix="perception_cell_"))
        self.textures = TextureCache(self._texture_dir, self.client)
        self.items: dict[int, Item] = {}
        self.seed = seed
        self.frame_index = 0
        self._cache: _Render | None = None
        self._outside_tray: dict[float, np.ndarray] = {}
        self.reset(seed)

    # -- scene ---------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Build a new scene from ``seed``: drop items into the tray and let them settle."""
        if self.config.style_domain is not None:
            self._reset_styled(seed)
            return
        self._empty_world(seed)
        rng = np.random.default_rng(seed)
        cfg = self.config
        n = int(rng.integers(cfg.min_items, cfg.max_items + 1))
        cluster = rng.uniform() < cfg.same_colour_cluster_prob
        cluster_size = int(rng.integers(2, 5)) if cluster else 0
        cluster_colour = rng.uniform(0.1, 0.9, 3)
        cluster_centre = rng.uniform(-0.1, 0.1, 2)
        for i in range(n + cfg.num_foreign):
            foreign = i >= n
            in_cluster = i < cluster_size
            spec = sample_item(cfg.foreign_split if foreign else cfg.item_split, rng,
                               cluster_colour if in_cluster else None)
            if in_cluster:
                xy = cluster_centre + rng.uniform(-0.05, 0.05, 2)
            else:
                xy = rng.uniform(-TRAY_HALF_WIDTH_M, TRAY_HALF_WIDTH_M, 2)
            z = 0.08 + 0.035 * i
            orn = p.getQuaternionFromEuler(rng.uniform(-np.pi, np.pi, 3).tolist())
            body = self._spawn(spec, [float(xy[0]), float(xy[1]), z], orn)
            self.items[body] = Item(body, len(self.items) + 1, spec, foreign)
        self.settle(cfg.settle_max_s)

    def _reset_styled(self, seed: int) -> None:
        """A randomized scene: its look from the style domain, its items from ``seed``."""
        cfg = self.config
        self.style = style_for_seed(cfg.style_domain, seed)
        self.colour_camera = ColourCamera(self.style.rgb_noise_sigma, self.style.white_balance,
                                          self.style.blur_sigma_px)
        self.depth_sensor = DepthSensor(self.style.depth_sensor)
        self.intrinsics = PinholeIntrinsics.from_fov(cfg.width, cfg.height,
                                                     self.style.fov_y_deg)
        self.home_camera_pose = styled_bin.camera_pose(self.style)
        self._outside_tray = {}
        self._empty_world(seed)
        rng = np.random.default_rng(seed)
        look_rng = np.random.default_rng([seed, styled_bin.ITEM_LOOK_STREAM])
        placements = styled_bin.layout_items(self.style, cfg.item_split, rng)
        foreign = [(sample_item(cfg.foreign_split, rng),
                    [float(v) for v in rng.uniform(-0.1, 0.1, 2)] + [0.3 + 0.04 * k],
                    p.getQuaternionFromEuler(rng.uniform(-np.pi, np.pi, 3).tolist()))
                   for k in range(cfg.num_foreign)]
        same_look = None
        for i, (spec, position, orientation) in enumerate(placements + foreign):
            is_foreign = i >= len(placements)
            if self.style.layout == "same_sku" and not is_foreign and same_look is not None:
                look = same_look  # copies of one product share its packaging
            else:
                look = styled_bin.item_look(spec, self.style, look_rng, self.textures)
                if self.style.layout == "same_sku" and not is_foreign:
                    same_look = look
            spec, texture, glossy = look
            body = self._spawn(spec, position, orientation, texture, glossy)
            self.items[body] = Item(body, len(self.items) + 1, spec, is_foreign, glossy)
        self.settle(cfg.settle_max_s)

    def stage(self, placements: list[tuple[ItemSpec, list[float], list[float]]],
              seed: int = 0) -> None:
        """Build a hand-made scene: ``(spec, position, quaternion xyzw)`` per item, then settle.

        For tests and demonstrations of specific physical situations.
        """
        self._empty_world(seed)
        for spec, position, orientation in placements:
            body = self._spawn(spec, list(position), tuple(orientation))
            self.items[body] = Item(body, len(self.items) + 1, spec)
        self.settle(self.config.settle_max_s)

    def _empty_world(self, seed: int) -> None:
        cid = self.client
        p.resetSimulation(physicsClientId=cid)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, fixedTimeStep=1 / PHYSICS_HZ,
                                    physicsClientId=cid)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        self.seed, self.frame_index, self._cache, self.items = seed, 0, None, {}
        self._textures: dict[str, int] = {}
        self.textures.reset()
        if self.style is not None:
            self.bin_bodies = styled_bin.build_bin(
                cid, self.style, self.textures, np.random.default_rng([seed, 0xB1]))
            return
        self.plane = p.loadURDF("plane.urdf", physicsClientId=cid)
        self.tray = p.loadURDF(TRAY_URDF, useFixedBase=True, physicsClientId=cid)

    def _spawn(self, spec: ItemSpec, position: list[float], orientation: tuple,
               texture_id: int | None = None, glossy: bool = False) -> int:
        cid = self.client
        if spec.kind == "urdf":
            body = p.loadURDF(spec.urdf, position, orientation, globalScaling=spec.size[0],
                              physicsClientId=cid)
        elif spec.kind == "mesh":
            scale = [spec.size[0]] * 3
            col = p.createCollisionShape(p.GEOM_MESH, fileName=spec.mesh, meshScale=scale,
                                         physicsClientId=cid)
            vis = p.createVisualShape(p.GEOM_MESH, fileName=spec.mesh, meshScale=scale,
                                      physicsClientId=cid)
            body = p.createMultiBody(spec.mass, col, vis, position, orientation,
                                     physicsClientId=cid)
        else:
            if spec.kind == "box":
                shape = {"shapeType": p.GEOM_BOX, "halfExtents": spec.size}
                vis_shape = dict(shape)
            else:
                shape = {"shapeType": p.GEOM_CYLINDER, "radius": spec.size[0],
                         "height": 2 * spec.size[1]}
                vis_shape = {"shapeType": p.GEOM_CYLINDER, "radius": spec.size[0],
                             "length": 2 * spec.size[1]}
            col = p.createCollisionShape(**shape, physicsClientId=cid)
            vis = p.createVisualShape(**vis_shape, rgbaColor=spec.rgba or (0.5, 0.5, 0.5, 1),
                                      physicsClientId=cid)
            body = p.createMultiBody(spec.mass, col, vis, position, orientation,
                                     physicsClientId=cid)
        if spec.rgba is not None:
            p.changeVisualShape(body, -1, rgbaColor=spec.rgba, physicsClientId=cid)
        p.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=cid)
        if spec.texture is not None:
            if spec.texture not in self._textures:
                self._textures[spec.texture] = p.loadTexture(spec.texture, physicsClientId=cid)
            p.changeVisualShape(body, -1, textureUniqueId=self._textures[spec.texture],
                                physicsClientId=cid)
        if texture_id is not None:
            p.changeVisualShape(body, -1, textureUniqueId=texture_id, physicsClientId=cid)
        if self.style is not None:  # gloss only where the light model has a specular term
            shine = 0.9 if glossy else 0.05
            p.changeVisualShape(body, -1, specularColor=[shine] * 3, physicsClientId=cid)
        return body

    def settle(self, max_seconds: float) -> int:
        """Step physics until every item rests (or ``max_seconds``); returns the steps taken.

        Items that leave the tray (fell over the rim) are removed.
        """
        cid = self.client
        steps = 0
        max_steps = int(max_seconds * PHYSICS_HZ)
        while steps < max_steps:
            for _ in range(24):
                p.stepSimulation(physicsClientId=cid)
            steps += 24
            if steps >= 120 and self._max_speed() < 0.01:
                break
        hx, hy = (0.3, 0.3) if self.style is None else \
            (h + 0.02 for h in self.style.bin_half_xy_m)
        for body in list(self.items):
            pos = p.getBasePositionAndOrientation(body, physicsClientId=cid)[0]
            if abs(pos[0]) > hx or abs(pos[1]) > hy or pos[2] < 0.0:
                self.remove(body)
        self._cache = None
        return steps

    def _max_speed(self) -> float:
        speeds = [np.linalg.norm(p.getBaseVelocity(b, physicsClientId=self.client)[0])
                  for b in self.items]
        return float(max(speeds, default=0.0))

    def remove(self, body: int) -> None:
        """Take a body out of the cell (it was picked and placed elsewhere)."""
        p.removeBody(body, physicsClientId=self.client)
        del self.items[body]
        self._cache = None

    def item_positions(self) -> dict[int, np.ndarray]:
        """World positions (m) of each item's base, keyed by ground-truth label."""
        return {it.label: np.asarray(p.getBasePositionAndOrientation(
            it.body, physicsClientId=self.client)[0]) for it in self.items.values()}

    # -- camera --------------------------------------------------------------------------
    def render(self, camera_pose: np.ndarray | None = None) -> Frame:
        """Render the next frame from ``camera_pose`` (default: the fixed overhead camera).

        The clean render is cached until the scene changes; each frame gets fresh sensor
        noise seeded by ``(seed, frame index)``, as a real camera streaming a still scene.
        """
        pose = self.home_camera_pose if camera_pose is None else np.asarray(camera_pose)
        if self._cache is None or not np.array_equal(self._cache.pose, pose):
            self._cache = self._render_clean(pose)
        clean = self._cache
        rng = np.random.default_rng([self.seed, self.frame_index])
        if self.style is not None:
            rgb, depth = self._styled_sensors(clean, rng)
        else:
            rgb = add_rgb_noise(clean.rgb, self.config.rgb_noise_sigma, rng)
            depth = self.depth_noise.apply(clean.depth, rng) if self.config.depth_noise \
                else clean.depth.copy()
        frame = Frame(rgb, depth, clean.labels.copy(), pose.copy(), self.intrinsics,
                      self.frame_index)
        self.frame_index += 1
        return frame

    def _styled_sensors(self, clean: _Render, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The style's colour camera and depth sensor applied to a clean render."""
        rgb = self.colour_camera.apply(clean.rgb, rng)
        if not self.config.depth_noise:
            return rgb, clean.depth.copy()
        depth = self.depth_sensor.apply(clean.depth, clean.rgb, self.intrinsics, rng,
                                        clean.glossy)
        return rgb, depth

    def _render_clean(self, pose: np.ndarray) -> _Render:
        cfg, cid = self.config, self.client
        eye = pose[:3, 3]
        view = p.computeViewMatrix(eye.tolist(), (eye + pose[:3, 2]).tolist(),
                                   (-pose[:3, 1]).tolist())
        style = self.style
        fov = cfg.fov_y_deg if style is None else style.fov_y_deg
        proj = p.computeProjectionMatrixFOV(fov, cfg.width / cfg.height, NEAR_M, FAR_M)
        light = {"shadow": int(cfg.shadows), "lightDirection": [0.4, 0.3, 1.0]}
        if style is not None:
            light = {"shadow": int(cfg.shadows and style.shadows),
                     "lightDirection": list(style.light_direction),
                     "lightColor": list(style.light_rgb),
                     "lightAmbientCoeff": style.light_ambient,
                     "lightDiffuseCoeff": style.light_diffuse,
                     "lightSpecularCoeff": style.light_specular}
        _, _, rgba, zbuf, seg = p.getCameraImage(
            cfg.width, cfg.height, view, proj, renderer=p.ER_TINY_RENDERER,
            physicsClientId=cid, **light)
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(cfg.height, cfg.width, 4)
        zbuf = np.asarray(zbuf, dtype=np.float64).reshape(cfg.height, cfg.width)
        # OpenGL depth buffer to metric z-depth of a perspective frustum.
        depth = (FAR_M * NEAR_M / (FAR_M - (FAR_M - NEAR_M) * zbuf)).astype(np.float32)
        depth[zbuf >= 1.0] = np.nan
        seg = np.asarray(seg, dtype=np.int64).reshape(cfg.height, cfg.width)
        lut = np.zeros(max(self.items, default=0) + 2, dtype=np.uint16)
        for body, item in self.items.items():
            lut[body] = item.label
        body_ids = np.where((seg >= 0) & (seg < lut.size), seg, lut.size - 1)
        labels = lut[body_ids]
        # the glossy items' pixels, once per render (the sensor models read them per frame)
        shiny = [it.label for it in self.items.values() if it.glossy]
        glossy = np.isin(labels, shiny) if shiny else None
        return _Render(np.ascontiguousarray(rgba[..., :3]), depth, labels, pose.copy(), glossy)

    def outside_tray(self, margin_m: float = 0.01) -> np.ndarray:
        """``(H, W) bool`` pixels of the home camera outside the tray floor (shrunk by
        ``margin_m`` from the walls): where no cup may go. The camera is fixed, so it is
        computed once per margin."""
        cache = self._outside_tray
        if margin_m not in cache:
            polygon = tray_floor_polygon(self.home_camera_pose, self.intrinsics, margin_m) \
                if self.style is None else self.floor_polygon(margin_m)
            cache[margin_m] = outside_polygon((self.config.height, self.config.width), polygon)
        return cache[margin_m]

    def floor_polygon(self, margin_m: float = 0.01) -> np.ndarray:
        """``(4, 2)`` pixel ``(u, v)`` corners of the bin floor, shrunk by ``margin_m`` from
        the walls, seen from the home camera."""
        if self.style is None:
            return tray_floor_polygon(self.home_camera_pose, self.intrinsics, margin_m)
        corners = styled_bin.floor_corners(self.style, margin_m)
        return self.intrinsics.project(transform_points(invert_pose(self.home_camera_pose),
                                                        corners))

    def floor_plane(self) -> np.ndarray:
        """The bin floor ``(nx, ny, nz, d)`` in the home camera's optical frame, exact from
        the scene's geometry (what a cell's calibration measures; :meth:`calibrate_floor_plane`
        fits it to an empty bin's depth, as a real cell must)."""
        top = TRAY_FLOOR_TOP_M if self.style is None else styled_bin.FLOOR_TOP_M
        return floor_plane_from_pose(self.home_camera_pose, top)

    def calibrate_floor_plane(self) -> np.ndarray:
        """The tray floor as ``(nx, ny, nz, d)`` in the home camera's optical frame, fitted
        to a depth frame of the empty tray inside the floor polygon, as a cell
        is calibrated once. Ends the current scene (the cell is left empty)."""
        from perception_nodes.core.floor_plane import fit_floor_plane

        self.stage([], self.seed)
        depth = self.render().depth
        inside = ~self.outside_tray(0.02)
        return fit_floor_plane(self.intrinsics.depth_to_points(depth)[inside])

    def silhouette(self, body: int) -> np.ndarray:
        """``(H, W) bool`` of ``body`` seen alone from the home camera: every other item moved
        out of view for one render, then the physics state restored exactly (its amodal
        mask). It is a frame of the cell: the frame counter advances as for :meth:`render`,
        so the frames after it get the noise they always had."""
        cid = self.client
        state = p.saveState(physicsClientId=cid)
        try:
            for other in self.items:
                if other != body:
                    p.resetBasePositionAndOrientation(other, [5.0 + other, 5.0, -5.0],
                                                      [0, 0, 0, 1], physicsClientId=cid)
            alone = self._render_clean(self.home_camera_pose)
            self.frame_index += 1
        finally:
            p.restoreState(state, physicsClientId=cid)
            p.removeState(state, physicsClientId=cid)
        return alone.labels == self.items[body].label

    def close(self) -> None:
        """Disconnect this cell's physics client."""
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None
        shutil.rmtree(self._texture_dir, ignore_errors=True)

    def __enter__(self) -> PickingCell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def orbit_camera_poses(num_frames: int, radius_m: float = 0.12, height_m: float = 0.85,
                       sway_m: float = 0.03) -> list[np.ndarray]:
    """Camera poses ``T_world_camera`` on a smooth loop above the tray, all looking at it.

    Used by the moving-camera mode: sequences with known poses for monocular depth.
    """
    poses = []
    for t in np.linspace(0.0, 2.0 * np.pi, num_frames, endpoint=False):
        eye = [radius_m * np.cos(t), radius_m * np.sin(t), height_m + sway_m * np.sin(2 * t)]
        poses.append(look_at(eye, [0.0, 0.0, 0.03], [0.0, 1.0, 0.0]))
    return poses


def tray_floor_polygon(camera_pose: np.ndarray, intrinsics: PinholeIntrinsics,
                       margin_m: float = 0.01) -> np.ndarray:
    """``(4, 2)`` pixel ``(u, v)`` corners of the tray floor, shrunk by ``margin_m`` from the
    walls, seen from ``camera_pose`` (``T_world_camera``): the workspace of grasps."""
    half = TRAY_FLOOR_HALF_M - margin_m
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    world = np.column_stack([corners, np.full(4, TRAY_FLOOR_TOP_M)])
    cam = transform_points(invert_pose(camera_pose), world)
    return intrinsics.project(cam)
