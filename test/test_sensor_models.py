"""Depth sensor and colour camera models of the simulated cell (sim.sensor_models)."""

import numpy as np
import pytest

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.sim.sensor_models import DEPTH_SENSORS, ColourCamera, DepthSensor

H, W = 120, 160
K = PinholeIntrinsics(W, H, 300.0, 300.0, (W - 1) / 2, (H - 1) / 2)
BOX_ROWS, BOX_COLS = slice(40, 80), slice(60, 100)  # box columns 60..99
FAR, NEAR = 0.9, 0.85


def plane(z: float = FAR) -> np.ndarray:
    return np.full((H, W), z, np.float32)


def staged() -> np.ndarray:
    """A plane at 0.9 m with a box 5 cm higher (nearer the camera) in the middle."""
    depth = plane()
    depth[BOX_ROWS, BOX_COLS] = NEAR
    return depth


def grey(level: int) -> np.ndarray:
    return np.full((H, W, 3), level, np.uint8)


def textured(seed: int = 7, low: int = 150) -> np.ndarray:
    """Bright random texture: matchable for stereo, bright for structured light and ToF."""
    return np.random.default_rng(seed).integers(low, 256, (H, W, 3), dtype=np.uint8)


def run(kind, depth, rgb, seed=0, glossy=None, **kwargs):
    return DepthSensor(kind, **kwargs).apply(depth, rgb, K, np.random.default_rng(seed), glossy)


@pytest.mark.parametrize("kind", DEPTH_SENSORS)
def test_output_conventions(kind):
    depth = staged()
    depth[5:10, 120:130] = np.nan  # no return
    depth[20, 120] = 0.1  # too close
    depth[21, 120] = 3.5  # too far
    depth[22, 120] = -1.0
    depth[23, 120] = np.inf
    out = run(kind, depth, textured())
    assert out.dtype == np.float32 and out.shape == (H, W)
    assert np.isnan(out[5:10, 120:130]).all()
    assert np.isnan(out[20:24, 120]).all()
    valid = out[np.isfinite(out)]
    assert valid.size > 0.6 * out.size
    assert valid.min() >= 0.2 and valid.max() <= 3.0
    assert not (out < 0).any()
    assert 0.8 < np.nanmedian(out[BOX_ROWS, 110:150]) < 1.0


@pytest.mark.parametrize("kind", DEPTH_SENSORS)
def test_seeded_and_deterministic(kind):
    depth, rgb = staged(), textured()
    glossy = np.zeros((H, W), bool)
    glossy[:30] = True
    first = run(kind, depth, rgb, seed=3, glossy=glossy)
    assert np.array_equal(first, run(kind, depth, rgb, seed=3, glossy=glossy), equal_nan=True)
    assert not np.array_equal(first, run(kind, depth, rgb, seed=4, glossy=glossy),
                              equal_nan=True)
    assert np.array_equal(depth, staged())  # input untouched


@pytest.mark.parametrize("kind", DEPTH_SENSORS)
def test_noise_grows_with_distance(kind):
    region = (slice(10, 110), slice(40, 150))  # clear of the stereo left band
    stds = [np.nanstd(run(kind, plane(z), textured())[region]) for z in (0.6, 1.2)]
    assert stds[0] > 0
    assert stds[1] > 1.5 * stds[0]


@pytest.mark.parametrize("kind", DEPTH_SENSORS)
def test_noise_scale_multiplies_noise(kind):
    region = (slice(10, 110), slice(40, 150))
    quiet = np.nanstd(run(kind, plane(1.2), textured(), noise_scale=0.5)[region])
    loud = np.nanstd(run(kind, plane(1.2), textured(), noise_scale=2.0)[region])
    assert loud > 2.5 * quiet


def test_unknown_kind_and_mismatched_sizes_are_rejected():
    with pytest.raises(ValueError):
        DepthSensor("lidar")
    with pytest.raises(ValueError):
        run("tof", staged(), textured()[:, :100])


def test_structured_light_loses_the_pattern_on_dark_and_glossy_surfaces():
    dark = np.isnan(run("structured_light", plane(), grey(15))).mean()
    bright = np.isnan(run("structured_light", plane(), grey(200))).mean()
    assert dark > 0.4 and bright < 0.01
    glossy = np.zeros((H, W), bool)
    glossy[:, : W // 2] = True
    out = run("structured_light", plane(), grey(200), glossy=glossy)
    assert np.isnan(out[:, : W // 2]).mean() > 0.3
    assert np.isnan(out[:, W // 2 :]).mean() < 0.01


def test_structured_light_projector_shadow_on_the_far_side_towards_plus_u():
    # Band width fx b (1/z_near - 1/z_far) = 300 * 0.2 * (1/0.85 - 1/0.9) = 3.9 px.
    out = run("structured_light", staged(), grey(200), baseline_m=0.2)
    rows = slice(45, 75)
    right = np.isnan(out[rows, 100:106]).sum(1)  # background just right of the box
    left = np.isnan(out[rows, 54:60]).sum(1)  # background just left of the box
    assert np.isnan(out[rows, 101:103]).all()
    assert 3 <= right.mean() <= 4.5
    assert left.mean() < 1.0  # only edge dropouts in the last column
    assert np.isnan(out[rows, 54:59]).sum() == 0
    # Depth edges drop out on both sides; the box interior and the plane stay valid.
    assert np.isnan(out[rows, 59:61]).any() and np.isfinite(out[rows, 70:90]).all()


def test_stereo_blends_and_fattens_edges():
    out = run("stereo", staged(), textured(), noise_scale=0.0)
    between = (out > NEAR + 0.01) & (out < FAR - 0.01)
    assert between[BOX_ROWS, 98:103].sum() >= 20  # the box's right edge bleeds
    assert not between[:, 110:].any() and not between[45:75, 65:95].any()
    # The background beside the edge is pulled towards the foreground.
    assert np.nanmean(out[45:75, 100]) < FAR - 0.02


def test_stereo_left_band_and_half_occlusion_are_invalid():
    out = run("stereo", plane(), textured())
    assert np.isnan(out[:, :15]).all()  # d = fx b / z = 16.7 px
    assert np.isfinite(out[:, 30:]).mean() > 0.95
    # Baseline 0.2 m: the left band is 66.7 + 2 px wide, and the right camera cannot see
    # 3.9 - 0.5 px of background left of a box at columns 100..139; its right side is seen.
    depth = plane()
    depth[BOX_ROWS, 100:140] = NEAR
    out = run("stereo", depth, textured(), baseline_m=0.2)
    rows = slice(45, 75)
    assert np.isnan(out[:, :66]).all() and np.isfinite(out[rows, 70:96]).all()
    assert np.isnan(out[rows, 97:100]).all()
    assert np.isfinite(out[rows, 140:]).mean() > 0.95


def test_stereo_holes_on_textureless_regions():
    rgb = textured()
    rgb[:, : W // 2] = 128
    out = run("stereo", plane(0.6), rgb)
    flat = np.isnan(out[:, 40:72]).mean()
    texture = np.isnan(out[:, 90:]).mean()
    assert flat > 0.08 and texture < 0.02 and flat > 4 * texture


def test_tof_flying_pixels_and_multipath_at_edges():
    out = run("tof", staged(), grey(200))
    between = (out > NEAR + 0.01) & (out < FAR - 0.01)
    edges = np.zeros((H, W), bool)
    edges[38:82, 58:102] = True
    edges[42:78, 62:98] = False
    assert between[edges].sum() > 30
    assert not between[~edges].any()
    assert not np.isnan(out).any()
    # Multipath: on the floor beside the box (concave corner) a few pixels read too far.
    beside = np.zeros((H, W), bool)
    beside[36:84, 56:104] = True
    beside[BOX_ROWS, BOX_COLS] = False
    assert (out[beside] > FAR + 0.008).sum() >= 1
    assert not (out[~beside] > FAR + 0.008).any()


def test_tof_dark_pixels_are_noisier_not_missing():
    dark = run("tof", plane(), grey(15))
    bright = run("tof", plane(), grey(200))
    assert not np.isnan(dark).any()
    assert np.std(dark) > 3 * np.std(bright)


def test_colour_camera_white_balance_tints_grey():
    out = ColourCamera(noise_sigma=0.0, white_balance=(1.2, 1.0, 0.8)).apply(
        grey(128), np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    assert (out[..., 0] == 154).all() and (out[..., 1] == 128).all()
    assert (out[..., 2] == 102).all()
    noisy = ColourCamera(white_balance=(1.2, 1.0, 0.8)).apply(grey(128),
                                                               np.random.default_rng(0))
    means = noisy.reshape(-1, 3).mean(0)
    assert means[0] > means[1] + 20 > means[2] + 40


def test_colour_camera_blur_removes_high_frequencies():
    rgb = textured(low=0)
    rng = np.random.default_rng(0)
    sharp = ColourCamera(noise_sigma=0.0).apply(rgb, rng)
    blurred = ColourCamera(noise_sigma=0.0, blur_sigma_px=2.0).apply(rgb, rng)
    assert np.array_equal(sharp, rgb)

    def energy(img):
        return np.mean(np.diff(img.astype(float), axis=1) ** 2)

    assert energy(blurred) < 0.1 * energy(sharp)
    assert abs(blurred.mean() - rgb.mean()) < 2


def test_colour_camera_noise_is_seeded_and_grows_with_intensity():
    camera = ColourCamera(noise_sigma=3.0)
    rgb = textured(low=0)
    first = camera.apply(rgb, np.random.default_rng(5))
    assert np.array_equal(first, camera.apply(rgb, np.random.default_rng(5)))
    assert not np.array_equal(first, camera.apply(rgb, np.random.default_rng(6)))
    dark = camera.apply(grey(20), np.random.default_rng(0)).astype(float)
    bright = camera.apply(grey(220), np.random.default_rng(0)).astype(float)
    assert 2.5 < dark.std() < 3.5
    assert bright.std() > 1.3 * dark.std()
    with pytest.raises(ValueError):
        ColourCamera(noise_sigma=-1.0)
