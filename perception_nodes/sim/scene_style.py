"""How a randomized scene of the simulated cell looks: bin, items, light, camera, sensor.

Each factor is drawn per scene from the ranges of a *domain*: ``train`` (what every training
split draws from) or ``novel`` (factor values and texture families never used for training:
a held-out domain). The draw is seeded by the scene seed alone, on a stream of its own, so a
seed names its look as it names its items. ``FACTORS`` documents every factor and its range
per domain (the table in docs/sim.md is made from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception_nodes.sim.sensor_models import DEPTH_SENSORS
from perception_nodes.sim.textures import BIN_FAMILIES, PRINT_FAMILIES, TONES

DOMAINS = ("train", "novel")
STYLE_STREAM = 0x5C3E  # the look's own random stream beside the items' (seed, STYLE_STREAM)
LAYOUTS = ("mixed", "pile", "same_sku")

# texture families and sensors: disjoint between the domains
TRAIN_BIN_FAMILIES = ("wood", "felt", "cardboard", "plastic", "brushed_metal")
NOVEL_BIN_FAMILIES = ("galvanised", "rubber", "concrete")
TRAIN_PRINT_FAMILIES = ("plain", "text", "logo", "stripes", "gradient")
NOVEL_PRINT_FAMILIES = ("barcode", "photo", "pattern")
TRAIN_SENSORS = ("structured_light", "stereo")
NOVEL_SENSORS = ("tof",)
# continuous factors: (low, high) per domain; a novel range is outside the training one
CAMERA_HEIGHT_M = {"train": ((0.6, 1.1),), "novel": ((0.45, 0.6), (1.1, 1.35))}
# novel: a wide lens close to the bin, or a long one far above it (cells are set up so that
# the bin fills the view)
FOV_Y_DEG = {"train": ((40.0, 60.0),), "novel": ((60.0, 75.0), (30.0, 40.0))}
TILT_DEG = {"train": ((0.0, 10.0),), "novel": ((10.0, 15.0),)}
LIGHT_KELVIN = {"train": ((3500.0, 6500.0),), "novel": ((2700.0, 3500.0), (6500.0, 9000.0))}

FACTORS = {  # factor: (train, novel), as documented in docs/sim.md
    "bin": ("tote (70 %) or flat tray; inner half-size 0.16-0.26 m, aspect 0.6-1.0, walls "
            "8-15 cm (tote) or 2-4 cm (tray)", "same"),
    "floor and wall material": (", ".join(TRAIN_BIN_FAMILIES) + "; any colour incl. white and "
                                "black; wear 0-1 (scratches, stains, labels)",
                                ", ".join(NOVEL_BIN_FAMILIES) + "; same colours and wear"),
    "item print": (", ".join(TRAIN_PRINT_FAMILIES) + " (printed share 0-100 %)",
                   ", ".join(NOVEL_PRINT_FAMILIES)),
    "item tone": ("white, pale, grey, black, saturated, any", "same"),
    "glossy items": ("0-50 % of items", "same"),
    "layout": ("mixed 5-40 items (50 %), pile 20-60 dropped in layers (25 %), same-SKU "
               "10-40 copies packed flush (25 %)", "same"),
    "light": ("elevation 35-85 deg, any azimuth, 3500-6500 K, diffuse 0.5-1.0, ambient "
              "0.3-0.7, specular 0-0.6, hard shadows 80 %", "2700-3500 or 6500-9000 K, "
                                                            "rest the same"),
    "camera": ("0.6-1.1 m above the floor, vertical FOV 40-60 deg (at most what keeps the "
               "bin's long side over half the image), tilt 0-10 deg, any roll",
               "0.45-0.6 m with FOV 60-75 deg, or 1.1-1.35 m with FOV 30-40 deg; tilt 10-15 "
               "deg, any roll"),
    "colour sensor": ("read noise 1-4 DN, white-balance gains 0.85-1.15, blur 0-1 px", "same"),
    "depth sensor": (", ".join(TRAIN_SENSORS), ", ".join(NOVEL_SENSORS)),
}


@dataclass(frozen=True)
class SceneStyle:
    """Every appearance factor of one scene (lengths in metres, angles in degrees, colours
    RGB in [0, 1]). The bin's inner floor is centred on the world origin, its top at
    ``FLOOR_TOP_M``; the camera looks at the floor centre from ``camera_height_m`` above it,
    tilted by ``tilt_deg`` towards ``tilt_azimuth_deg`` and rolled by ``roll_deg``."""

    domain: str
    bin_kind: str
    bin_half_xy_m: tuple[float, float]
    wall_height_m: float
    floor_family: str
    floor_rgb: tuple[float, float, float]
    floor_wear: float
    wall_family: str
    wall_rgb: tuple[float, float, float]
    print_families: tuple[str, ...]
    printed_share: float
    tones: tuple[str, ...]
    glossy_share: float
    layout: str
    num_items: int
    light_direction: tuple[float, float, float]
    light_rgb: tuple[float, float, float]
    light_diffuse: float
    light_ambient: float
    light_specular: float
    shadows: bool
    camera_height_m: float
    fov_y_deg: float
    tilt_deg: float
    tilt_azimuth_deg: float
    roll_deg: float
    rgb_noise_sigma: float
    white_balance: tuple[float, float, float]
    blur_sigma_px: float
    depth_sensor: str


def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Colour of a black body at ``kelvin`` (1000-40000 K), normalised to its brightest
    channel (Tanner Helland's fit of the CIE data)."""
    t = np.clip(kelvin, 1000.0, 40000.0) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else \
        288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else
                               138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip([r, g, b], 0.0, 255.0)
    return tuple(float(c) for c in rgb / rgb.max())


def _uniform_in(ranges: tuple[tuple[float, float], ...], rng: np.random.Generator) -> float:
    """A value from one of ``ranges``, chosen with probability proportional to its width."""
    widths = np.array([hi - lo for lo, hi in ranges])
    lo, hi = ranges[int(rng.choice(len(ranges), p=widths / widths.sum()))]
    return float(rng.uniform(lo, hi))


def _choice(options: tuple, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]


def sample_style(domain: str, rng: np.random.Generator) -> SceneStyle:
    """Draw a scene's look from ``domain`` (``train`` or ``novel``)."""
    from perception_nodes.sim.textures import tone_colour

    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; one of {DOMAINS}")
    novel = domain == "novel"
    bin_families = NOVEL_BIN_FAMILIES if novel else TRAIN_BIN_FAMILIES
    tote = rng.uniform() < 0.7
    half_x = rng.uniform(0.16, 0.26)
    half_y = half_x * rng.uniform(0.6, 1.0)
    if rng.uniform() < 0.5:
        half_x, half_y = half_y, half_x
    u = rng.uniform()
    layout = "mixed" if u < 0.5 else ("pile" if u < 0.75 else "same_sku")
    num_items = {"mixed": (5, 40), "pile": (20, 60), "same_sku": (10, 40)}[layout]
    elevation = np.radians(rng.uniform(35.0, 85.0))
    azimuth = rng.uniform(0.0, 2 * np.pi)
    kelvin = _uniform_in(LIGHT_KELVIN[domain], rng)
    height = _uniform_in(CAMERA_HEIGHT_M[domain], rng)
    if novel:
        fov = rng.uniform(*FOV_Y_DEG["novel"][0 if height < 0.6 else 1])
    else:  # the bin's long side spans half the image height or more
        fit = 2 * np.degrees(np.arctan(2.0 * max(half_x, half_y) / height))
        fov = rng.uniform(40.0, float(np.clip(fit, 40.0, 60.0)))
    return SceneStyle(
        domain=domain,
        bin_kind="tote" if tote else "tray",
        bin_half_xy_m=(float(half_x), float(half_y)),
        wall_height_m=float(rng.uniform(0.08, 0.15) if tote else rng.uniform(0.02, 0.04)),
        floor_family=_choice(bin_families, rng),
        floor_rgb=tone_colour(_choice(TONES, rng), rng),
        floor_wear=float(rng.uniform(0.0, 1.0)),
        wall_family=_choice(bin_families, rng),
        wall_rgb=tone_colour(_choice(TONES, rng), rng),
        print_families=NOVEL_PRINT_FAMILIES if novel else TRAIN_PRINT_FAMILIES,
        printed_share=float(rng.uniform(0.0, 1.0)),
        tones=TONES,
        glossy_share=float(rng.uniform(0.0, 0.5)),
        layout=layout,
        num_items=int(rng.integers(num_items[0], num_items[1] + 1)),
        light_direction=(float(np.cos(elevation) * np.cos(azimuth)),
                         float(np.cos(elevation) * np.sin(azimuth)), float(np.sin(elevation))),
        light_rgb=kelvin_to_rgb(kelvin),
        light_diffuse=float(rng.uniform(0.5, 1.0)),
        light_ambient=float(rng.uniform(0.3, 0.7)),
        light_specular=float(rng.uniform(0.0, 0.6)),
        shadows=bool(rng.uniform() < 0.8),
        camera_height_m=height,
        fov_y_deg=fov,
        tilt_deg=_uniform_in(TILT_DEG[domain], rng),
        tilt_azimuth_deg=float(rng.uniform(0.0, 360.0)),
        roll_deg=float(rng.uniform(0.0, 360.0)),
        rgb_noise_sigma=float(rng.uniform(1.0, 4.0)),
        white_balance=tuple(float(g) for g in rng.uniform(0.85, 1.15, 3)),
        blur_sigma_px=float(rng.uniform(0.0, 1.0)),
        depth_sensor=_choice(NOVEL_SENSORS if novel else TRAIN_SENSORS, rng),
    )


def style_for_seed(domain: str, seed: int) -> SceneStyle:
    """The look of scene ``seed`` in ``domain`` (its own stream: items draw from ``seed``)."""
    return sample_style(domain, np.random.default_rng([seed, STYLE_STREAM]))


def check_families() -> None:
    """The domains split the texture families and sensors that exist, with no overlap."""
    for train, novel, known in ((TRAIN_BIN_FAMILIES, NOVEL_BIN_FAMILIES, BIN_FAMILIES),
                                (TRAIN_PRINT_FAMILIES, NOVEL_PRINT_FAMILIES, PRINT_FAMILIES),
                                (TRAIN_SENSORS, NOVEL_SENSORS, DEPTH_SENSORS)):
        if set(train) & set(novel) or not set(train) | set(novel) <= set(known):
            raise ValueError(f"domains overlap or name unknown values: {train} / {novel}")
