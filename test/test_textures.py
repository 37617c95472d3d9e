"""Procedural bin and packaging textures: shapes, determinism, tones, wear, barcodes, photos."""

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from perception_nodes.sim.textures import (
    BIN_FAMILIES,
    PHOTOS,
    PRINT_FAMILIES,
    TONES,
    bin_texture,
    item_print,
    photo_dir,
    skimage_photo,
    tone_colour,
)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_family_lists_cover_the_required_ones():
    assert {"wood", "felt", "cardboard", "plastic", "brushed_metal", "galvanised", "rubber",
            "concrete"} <= set(BIN_FAMILIES)
    assert {"plain", "text", "barcode", "logo", "stripes", "gradient", "photo",
            "pattern"} <= set(PRINT_FAMILIES)
    assert TONES == ("white", "pale", "grey", "black", "saturated", "any")


@pytest.mark.parametrize("family", BIN_FAMILIES)
def test_bin_textures_have_the_requested_shape_and_dtype(family):
    for size, kwargs in ((96, {}), (64, {"wear": 0.9}), (48, {"base_rgb": (0.2, 0.6, 0.9)})):
        img = bin_texture(family, rng(1), size, **kwargs)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert img.std() > 0.5  # a texture, not a flat fill


@pytest.mark.parametrize("family", PRINT_FAMILIES)
def test_item_prints_have_the_requested_shape_and_dtype(family):
    for size, kwargs in ((96, {}), (48, {"base_rgb": (0.9, 0.1, 0.1)})):
        img = item_print(family, rng(2), size, **kwargs)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8


@pytest.mark.parametrize(
    ("make", "family"),
    [(bin_texture, f) for f in BIN_FAMILIES] + [(item_print, f) for f in PRINT_FAMILIES],
)
def test_same_seed_gives_identical_images_and_other_seeds_differ(make, family):
    first = make(family, rng(7), 96)
    assert np.array_equal(first, make(family, rng(7), 96))
    for seed in (8, 9):
        other = make(family, rng(seed), 96)
        assert np.abs(first.astype(int) - other).mean() > 2.0


def test_worn_bins_are_deterministic_too():
    assert np.array_equal(bin_texture("wood", rng(3), 96, wear=0.8),
                          bin_texture("wood", rng(3), 96, wear=0.8))


def _tones(tone: str, n: int = 300) -> np.ndarray:
    g = rng(11)
    colours = [tone_colour(tone, g) for _ in range(n)]
    assert all(isinstance(c, tuple) and len(c) == 3 and all(isinstance(v, float) for v in c)
               for c in colours)
    return np.array(colours)


def test_tone_colours_fall_in_their_ranges():
    for tone in TONES:
        c = _tones(tone)
        assert c.min() >= 0.0 and c.max() <= 1.0, tone
    white = _tones("white")
    assert white.min() >= 0.9 and np.ptp(white, axis=1).max() <= 0.05
    black = _tones("black")
    assert black.max() <= 0.12
    grey = _tones("grey")
    assert np.ptp(grey, axis=1).max() <= 0.05
    assert 0.25 <= grey.mean(1).min() and grey.mean(1).max() <= 0.75
    pale = _tones("pale")
    assert pale.max(1).min() >= 0.8 and pale.mean(1).min() >= 0.6
    assert (np.ptp(pale, axis=1) / pale.max(1)).max() <= 0.31  # low HSV saturation
    saturated = _tones("saturated")
    assert (np.ptp(saturated, axis=1) / saturated.max(1)).min() >= 0.74
    assert saturated.max(1).min() >= 0.6
    anything = _tones("any")
    assert anything.min() < 0.05 and anything.max() > 0.95


def test_base_rgb_sets_the_colour():
    red = (0.8, 0.1, 0.1)
    for img in (bin_texture("plastic", rng(4), 64, base_rgb=red),
                item_print("plain", rng(4), 64, base_rgb=red)):
        assert np.abs(img.reshape(-1, 3).mean(0) / 255 - red).max() < 0.05


def test_default_material_colours_look_like_the_material():
    for seed in range(5):
        r, g, b = bin_texture("cardboard", rng(seed), 64).reshape(-1, 3).mean(0)
        assert r > g > b  # brown
        assert bin_texture("rubber", rng(seed), 64).mean() < 70  # dark
        metal = bin_texture("brushed_metal", rng(seed), 64).reshape(-1, 3).mean(0)
        assert np.ptp(metal) < 12 and metal.mean() > 100  # light, near-neutral grey


def _coherence(img: np.ndarray) -> float:
    """How much the image's gradients share one direction (structure tensor), in [0, 1]."""
    g = img.astype(np.float32).mean(2)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = (gx * gx).mean(), (gy * gy).mean(), (gx * gy).mean()
    return float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy))


def test_grain_and_brushing_are_directional_while_isotropic_materials_are_not():
    for seed in range(6):
        for family in ("wood", "brushed_metal"):
            assert _coherence(bin_texture(family, rng(seed), 128)) > 0.6, (family, seed)
        for family in ("concrete", "plastic", "galvanised"):
            assert _coherence(bin_texture(family, rng(seed), 128)) < 0.3, (family, seed)


def test_wear_adds_scratches_and_stains_growing_with_wear():
    for family in BIN_FAMILIES:
        fractions = []
        for seed in range(4):
            clean = bin_texture(family, rng(seed), 128).astype(int)
            fractions.append([
                (np.abs(bin_texture(family, rng(seed), 128, wear=w) - clean).max(2) > 12).mean()
                for w in (0.3, 1.0)
            ])
        light, heavy = np.mean(fractions, axis=0)
        assert light > 0.003, family
        assert heavy > 2 * light, family


def _near_white(img: np.ndarray) -> float:
    return float((img.min(2) > 200).mean())


def test_paper_labels_appear_only_on_heavily_worn_bins():
    for seed in range(6):
        for family in ("rubber", "wood"):
            assert _near_white(bin_texture(family, rng(seed), 128)) == 0.0
            assert _near_white(bin_texture(family, rng(seed), 128, wear=0.45)) < 0.002
            assert _near_white(bin_texture(family, rng(seed), 128, wear=0.9)) > 0.02


def _transitions(row: np.ndarray) -> int:
    """Dark/light changes along a row, with hysteresis so noise does not count."""
    lo, hi = row.min(), row.max()
    if hi - lo < 80:
        return 0
    level = np.where(row < lo + 0.3 * (hi - lo), 0, np.where(row > lo + 0.7 * (hi - lo), 1, -1))
    seq = level[level >= 0]
    return int((seq[1:] != seq[:-1]).sum())


def test_barcodes_have_many_vertical_bars():
    for seed in range(8):
        grey = item_print("barcode", rng(seed), 256).astype(np.float32).mean(2)
        per_row = np.array([_transitions(row) for row in grey])
        # Many rows crossing 12+ bars each: the bars are vertical and tall.
        assert (per_row >= 24).sum() >= 40, seed
        plain = item_print("plain", rng(seed), 256).astype(np.float32).mean(2)
        assert max(_transitions(row) for row in plain) < 4


def test_text_prints_differ_from_plain_ones():
    for seed in range(5):
        plain = item_print("plain", rng(seed), 128).astype(int)
        text = item_print("text", rng(seed), 128).astype(int)
        # Same seed: the same background, so what differs is the lettering.
        assert (np.abs(text - plain).max(2) > 40).mean() > 0.02
        edges = [np.abs(cv2.Laplacian(im.astype(np.float32).mean(2), cv2.CV_32F)).mean()
                 for im in (plain, text)]
        assert edges[1] > 3 * edges[0]


def test_logos_stripes_and_patterns_use_several_colours():
    for seed in range(5):
        for family in ("logo", "stripes", "pattern"):
            img = item_print(family, rng(seed), 96)
            colours = np.unique(img.reshape(-1, 3) // 32, axis=0)
            assert len(colours) >= 2, (family, seed)
            assert np.ptp(img.reshape(-1, 3), axis=0).max() > 50, (family, seed)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_photos_ship_with_scikit_image_and_load_offline(no_network):
    import skimage

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 9))  # the fixture really cuts the network
    folder = photo_dir()
    assert folder == Path(skimage.__file__).parent / "data"
    skimage_photo.cache_clear()
    for name, filename in PHOTOS.items():
        assert (folder / filename).is_file(), f"{filename} is not inside the skimage wheel"
        photo = skimage_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
        assert 100 <= max(photo.shape[:2]) <= 512 and photo.std() > 10
        assert not photo.flags.writeable  # the cache cannot be corrupted by a caller
    for seed in range(4):
        assert item_print("photo", rng(seed), 64).std() > 5


def test_photos_are_the_ones_skimage_data_serves(no_network):
    import skimage.data

    for name in ("astronaut", "chelsea", "camera", "coins"):  # photos <= 512 px, not resized
        reference = getattr(skimage.data, name)()
        ours = skimage_photo(name)
        assert ours.shape[:2] == reference.shape[:2]
        red = reference if reference.ndim == 2 else reference[..., 0]
        assert np.array_equal(ours[..., 0], red)


def test_unknown_names_and_bad_arguments_raise():
    with pytest.raises(ValueError, match="wood.*concrete"):
        bin_texture("marble", rng(0))
    with pytest.raises(ValueError, match="plain.*pattern"):
        item_print("foil", rng(0))
    with pytest.raises(ValueError, match="white.*saturated"):
        tone_colour("beige", rng(0))
    with pytest.raises(ValueError, match="astronaut"):
        skimage_photo("lena")
    with pytest.raises(ValueError, match="wear"):
        bin_texture("wood", rng(0), wear=1.5)
