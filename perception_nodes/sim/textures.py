"""Procedural, seeded texture images for the simulated bin-picking cell (numpy + OpenCV).

Bins get material textures (wood, felt, cardboard, plastic, metals, rubber, concrete) with
optional wear; items get packaging prints (text, barcodes, logos, stripes, gradients, photos,
patterns). Every draw comes from the caller's ``np.random.Generator``, so the same generator
state gives bit-identical images. The only assets are photos shipped inside the
scikit-image wheel, read straight from its data folder so nothing is ever downloaded.
"""

from __future__ import annotations

import colorsys
import functools
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

BIN_FAMILIES: tuple[str, ...] = (
    "wood",
    "felt",
    "cardboard",
    "plastic",
    "brushed_metal",
    "galvanised",
    "rubber",
    "concrete",
)
PRINT_FAMILIES: tuple[str, ...] = (
    "plain",
    "text",
    "barcode",
    "logo",
    "stripes",
    "gradient",
    "photo",
    "pattern",
)
TONES: tuple[str, ...] = ("white", "pale", "grey", "black", "saturated", "any")

# Photos inside the scikit-image wheel (skimage/data/). skimage.data's loaders would fall back
# to a pooch download for files missing from the wheel; reading these files directly cannot.
PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "ihc": "ihc.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "camera": "camera.png",
    "coins": "coins.png",
    "moon": "moon.png",
    "brick": "brick.png",
    "gravel": "gravel.png",
}

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
_CONSONANTS = "bcdfghklmnprstvxz"
_VOWELS = "aeiouy"
_UNITS = ("g", "kg", "ml", "L", "mm", "pcs", "W", "V", "%")
_PHOTO_MAX_SIDE = 512  # larger photos are shrunk once at load, keeping crops cheap
Colour = tuple[float, float, float]


# ----------------------------------------------------------------------------- colours


def tone_colour(tone: str, rng: np.random.Generator) -> Colour:
    """An RGB colour in [0, 1] of a tone.

    white: >= 0.9 in all channels, near-neutral; pale: light, low saturation; grey: neutral,
    mid brightness; black: <= 0.12 in all channels; saturated: strong hue; any: uniform RGB.
    """
    if tone == "white":
        rgb = rng.uniform(0.93, 1.0) + rng.uniform(-0.015, 0.015, 3)
        rgb = np.clip(rgb, 0.9, 1.0)
    elif tone == "pale":
        rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.06, 0.3), rng.uniform(0.8, 0.97))
    elif tone == "grey":
        rgb = np.clip(rng.uniform(0.3, 0.7) + rng.uniform(-0.015, 0.015, 3), 0.0, 1.0)
    elif tone == "black":
        rgb = np.clip(rng.uniform(0.0, 0.09) + rng.uniform(-0.02, 0.02, 3), 0.0, 0.12)
    elif tone == "saturated":
        rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.75, 1.0), rng.uniform(0.6, 1.0))
    elif tone == "any":
        rgb = rng.uniform(0.0, 1.0, 3)
    else:
        raise ValueError(f"unknown tone {tone!r}; known: {', '.join(TONES)}")
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def _random_tone(rng: np.random.Generator) -> Colour:
    return tone_colour(TONES[int(rng.integers(len(TONES)))], rng)


def _hsv(rng: np.random.Generator, h: tuple, s: tuple, v: tuple) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*h), rng.uniform(*s), rng.uniform(*v)),
                    np.float32)


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 0.02) -> np.ndarray:
    return np.clip(rng.uniform(lo, hi) + rng.uniform(-tint, tint, 3), 0, 1).astype(np.float32)


def _luma(rgb: np.ndarray) -> float:
    return float(np.dot(rgb, (0.299, 0.587, 0.114)))


def _contrasting(rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    """A colour whose brightness differs clearly from ``bg`` (readable ink on a background)."""
    for _ in range(8):
        c = np.array(_random_tone(rng), np.float32)
        if abs(_luma(c) - _luma(bg)) > 0.35:
            return c
    return np.float32([0.05, 0.05, 0.05]) if _luma(bg) > 0.5 else np.float32([0.97] * 3)


def _base(base_rgb: Colour | None) -> np.ndarray | None:
    if base_rgb is None:
        return None
    rgb = np.asarray(base_rgb, np.float32)
    if rgb.shape != (3,):
        raise ValueError(f"base_rgb must be 3 floats in [0, 1], got {base_rgb!r}")
    return np.clip(rgb, 0, 1)


# Images are built plane by plane: numpy broadcasting over a trailing axis of 3 is ~20x
# slower than the same maths on 2-D planes.
def _planes(x) -> list:
    """A colour (3,) or an (H, W, 3) image as three scalars or 2-D planes."""
    return list(cv2.split(x)) if np.ndim(x) == 3 else [np.float32(v) for v in x]


def _mul(x, shade: np.ndarray) -> np.ndarray:
    return cv2.merge([p * shade for p in _planes(x)])


def _add(x, shade: np.ndarray) -> np.ndarray:
    return cv2.merge([p + shade for p in _planes(x)])


def _blend(x, src, alpha) -> np.ndarray:
    """x + (src - x) * alpha, for colours or images x and src and a 2-D or scalar alpha."""
    return cv2.merge([p + (q - p) * alpha for p, q in zip(_planes(x), _planes(src), strict=True)])


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- noise


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only (size, size) float32 row and column coordinates."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    y.flags.writeable = x.flags.writeable = False
    return y, x


def _noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int | None = None):
    """Smooth noise, (size, size) float32 of std ~0.6, with ~cells bumps across each axis."""
    cells_x = cells_y if cells_x is None else cells_x
    g = rng.standard_normal((cells_y + 2, cells_x + 2), dtype=np.float32)
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)


def _fine(rng: np.random.Generator, size: int, sigma: float = 0.8) -> np.ndarray:
    """Pixel-scale grain, (size, size) float32 of unit std."""
    n = rng.standard_normal((size, size), dtype=np.float32)
    # A Gaussian blur shrinks white noise's std by 2 sqrt(pi) sigma; undo that.
    return cv2.GaussianBlur(n, (0, 0), sigma) * np.float32(2 * math.sqrt(math.pi) * sigma)


def _line_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = c * math.cos(angle), c * math.sin(angle)
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


# ----------------------------------------------------------------------------- stamping


def _stamp(img: np.ndarray, mask: np.ndarray, src: np.ndarray, angle: float,
           centre: tuple[float, float]) -> None:
    """Blend ``src`` into float RGB ``img`` in place through a uint8 ``mask``.

    The mask (h, w) is rotated by ``angle`` degrees about its middle and placed with its
    middle at ``centre`` (x, y) px. ``src`` is a colour (3,) or an image (h, w, 3).
    """
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (centre[0] - w / 2, centre[1] - h / 2)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), (img.shape[1], img.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return
    m[:, 2] -= (x0, y0)  # warp only the covered box, not the whole image
    box = (int(x1 - x0), int(y1 - y0))
    alpha = cv2.warpAffine(mask, m, box, flags=cv2.INTER_LINEAR) * np.float32(1 / 255)
    if src.ndim == 3:
        src = cv2.warpAffine(src, m, box, flags=cv2.INTER_LINEAR)
    img[y0:y1, x0:x1] = _blend(img[y0:y1, x0:x1], src, alpha)


def _word(rng: np.random.Generator) -> str:
    """A product-like word: pronounceable syllables, a quantity with a unit, or a code."""
    kind = rng.uniform()
    if kind < 0.15:
        return f"{int(rng.integers(1, 1000))}{_UNITS[int(rng.integers(len(_UNITS)))]}"
    if kind < 0.25:
        letters = "".join(chr(65 + int(i)) for i in rng.integers(0, 26, 2))
        return f"{letters}-{int(rng.integers(10, 9999))}"
    word = "".join(_CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
                   + _VOWELS[int(rng.integers(len(_VOWELS)))]
                   for _ in range(int(rng.integers(1, 5))))
    if rng.uniform() < 0.4:
        word += _CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
    style = rng.uniform()
    return word.upper() if style < 0.4 else word.capitalize() if style < 0.8 else word


def _text_mask(text: str, font: int, height_px: float, thickness: int | None = None):
    """uint8 mask of ``text`` with capital letters about ``height_px`` tall."""
    cap = cv2.getTextSize("H", font & 0xF, 1.0, 1)[0][1]
    scale = max(height_px, 4.0) / cap
    thick = thickness or max(1, round(height_px / 12))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = thick + 2
    m = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    return m


def _fit(mask: np.ndarray, max_w: int, max_h: int) -> np.ndarray:
    """``mask`` shrunk, keeping its aspect, to at most (max_h, max_w) px."""
    scale = min(1.0, max_w / mask.shape[1], max_h / mask.shape[0])
    if scale == 1.0:
        return mask
    w, h = max(1, int(mask.shape[1] * scale)), max(1, int(mask.shape[0] * scale))
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)


def _barcode_mask(rng: np.random.Generator, w: int, h: int, digits: bool = True):
    """uint8 (h, w) mask of a 1-D barcode: bars of 1-4 modules, guard bars, digits below."""
    widths = rng.integers(1, 5, size=63)  # bar, space, bar, ... ending on a bar
    widths[:3] = widths[-3:] = 1  # start and end guards, as on EAN codes
    # As many bars as fit with modules >= 1.6 px, so thin bars and spaces stay resolved.
    fits = int(np.searchsorted(np.cumsum(widths[3:-3]), w / 1.6 - 6))
    widths = np.concatenate([widths[:3], widths[3: 3 + fits - fits % 2], widths[-3:]])
    edges = np.round(np.concatenate([[0], np.cumsum(widths)]) * (w / widths.sum())).astype(int)
    text_h = int(h * 0.22) if digits else 0
    bar_h = h - text_h
    m = np.zeros((h, w), np.uint8)
    for i in range(0, len(widths), 2):
        guard = i < 3 or i >= len(widths) - 3
        m[: bar_h + (text_h // 2 if guard else 0), edges[i]: edges[i + 1]] = 255
    if digits and text_h >= 5:
        code = "".join(str(int(d)) for d in rng.integers(0, 10, 13))
        t = _text_mask(code, cv2.FONT_HERSHEY_SIMPLEX, text_h * 0.7)
        t = cv2.resize(t, (w, text_h), interpolation=cv2.INTER_AREA)
        m[bar_h:] = np.maximum(m[bar_h:], t)
    return m


def _paper_label(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float RGB paper label: white, black text lines, often a barcode."""
    paper = np.array(tone_colour("white", rng), np.float32)
    ink = np.array(tone_colour("black", rng), np.float32)
    m = np.zeros((h, w), np.uint8)
    with_code = rng.uniform() < 0.7
    n_lines = int(rng.integers(1, 3 if with_code else 5))
    line_h = h * (0.5 if with_code else 0.85) / n_lines
    for i in range(n_lines):
        font = _FONTS[int(rng.integers(6))]  # the print fonts, not the script ones
        t = _text_mask(" ".join(_word(rng) for _ in range(int(rng.integers(1, 4)))), font,
                       line_h * 0.55)
        t = _fit(t, w - 8, int(line_h))
        y = int(2 + i * line_h)
        m[y: y + t.shape[0], 4: 4 + t.shape[1]] = t[: h - y]
    if with_code:
        bw, bh = int(w * 0.8), int(h * 0.4)
        m[h - bh - 3: h - 3, (w - bw) // 2: (w - bw) // 2 + bw] = _barcode_mask(rng, bw, bh)
    grime = np.float32(rng.uniform(0.92, 1.0))
    return _blend(paper * grime, ink, m * np.float32(1 / 255))


# ----------------------------------------------------------------------------- bin materials


def _wood(rng, size, base):
    colour = base if base is not None else _hsv(rng, (0.055, 0.11), (0.35, 0.7), (0.35, 0.88))
    y, x = _grid(size)
    n_planks = int(rng.integers(2, 6))
    seams = np.round(np.linspace(0, size, n_planks + 1)).astype(int)
    warp = _noise(rng, size, 2, 5) * np.float32(rng.uniform(3, 8))
    ring = np.empty((size, size), np.float32)
    tone = np.empty((size, 1), np.float32)
    for a, b in zip(seams[:-1], seams[1:], strict=True):
        # Far-away ring centres give straight grain, near ones the arcs of flat-sawn boards.
        cy = float(a + rng.choice([-1, 1]) * rng.uniform(0.3, 3.0) * size)
        cx = rng.uniform(0, size)
        squash = np.float32(rng.uniform(0.02, 0.12))
        d = np.sqrt((y[a:b] - cy) ** 2 + ((x[a:b] - cx) * squash) ** 2) + warp[a:b]
        ring[a:b] = (0.5 + 0.5 * np.sin(d * np.float32(2 * np.pi / rng.uniform(5, 14)))) ** 3
        tone[a:b] = rng.uniform(0.82, 1.12)
    fibre = _noise(rng, size, size // 3, 4)  # streaks along the grain
    shade = tone * (1 + 0.05 * fibre + 0.02 * _fine(rng, size, 0.6))
    img = _mul(colour, shade * (1 - 0.35 * ring))
    for s in seams[1:-1]:
        img[s - 1: s + 1] *= 0.45
    return img.transpose(1, 0, 2) if rng.uniform() < 0.5 else img


def _felt(rng, size, base):
    if base is not None:
        colour = base
    else:
        colour = (_grey(rng, 0.08, 0.6) if rng.uniform() < 0.6
                  else _hsv(rng, (0, 1), (0.3, 0.7), (0.25, 0.6)))
    if rng.uniform() < 0.5:  # felt: matted short fibres in a few directions, slight pilling
        shade = sum(cv2.filter2D(rng.standard_normal((size, size), dtype=np.float32), -1,
                                 _line_kernel(7, rng.uniform(0, np.pi))) for _ in range(3))
        shade = 1 + 0.12 * shade + 0.05 * _noise(rng, size, 12)
        return _mul(colour, shade)
    # Woven fabric: over/under threads (plain or twill), each thread slightly different. A
    # thread's profile depends on one axis only, so it is computed on a line and broadcast.
    t = np.arange(size, dtype=np.float32) / np.float32(rng.uniform(3, 7))
    idx = t.astype(np.int32)
    n = int(idx[-1]) + 1
    warp = np.sin(np.pi * (t % 1)) * (1 + rng.normal(0, 0.05, n).astype(np.float32)[idx])
    weft = np.sin(np.pi * (t % 1)) * (1 + rng.normal(0, 0.05, n).astype(np.float32)[idx])
    period = int(rng.choice([2, 3, 4]))
    over = (idx[None, :] + idx[:, None]) % period < max(1, period // 2)
    shade = 0.72 + 0.3 * np.where(over, warp[None, :], weft[:, None])
    shade += 0.03 * _fine(rng, size, 0.7)
    weft_tone = np.float32(rng.uniform(0.75, 1.1))  # weft yarn a shade off the warp
    return _mul(colour, shade * np.where(over, np.float32(1), weft_tone))


def _cardboard(rng, size, base):
    colour = base if base is not None else _hsv(rng, (0.07, 0.1), (0.35, 0.55), (0.5, 0.78))
    y, _ = _grid(size)
    flute = np.sin(y * np.float32(2 * np.pi / rng.uniform(7, 14)))
    specks = (rng.uniform(size=(size, size)) < rng.uniform(0.002, 0.008)) * rng.uniform(
        -1.0, 0.6, (size, size))
    shade = (1 + rng.uniform(0.02, 0.05) * flute + 0.04 * _fine(rng, size, 0.7)
             + 0.06 * _noise(rng, size, 6) + 0.8 * cv2.GaussianBlur(specks.astype(np.float32),
                                                                    (0, 0), 0.7))
    img = _mul(colour, shade)
    if rng.uniform() < 0.35:  # a strip of packing tape across the board
        a = int(rng.uniform(0, size * 0.8))
        b = a + int(rng.uniform(0.12, 0.25) * size)
        img[a:b] = _blend(img[a:b], _hsv(rng, (0.08, 0.11), (0.2, 0.45), (0.75, 0.95)), 0.55)
    return img.transpose(1, 0, 2) if rng.uniform() < 0.5 else img


def _plastic(rng, size, base):
    colour = base if base is not None else np.array(_random_tone(rng), np.float32)
    y, x = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    sheen = (x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))) / size - 0.5
    # Additive, so black and white plastic get mottling too.
    shade = (0.03 * sheen + 0.02 * _noise(rng, size, 5)
             + rng.uniform(0.004, 0.02) * _fine(rng, size, 0.7))
    return _add(colour, shade)


def _brushed_metal(rng, size, base):
    colour = base if base is not None else _grey(rng, 0.55, 0.82)
    k = int(rng.integers(12, 32)) * 2 + 1
    streaks = cv2.blur(rng.standard_normal((size, size), dtype=np.float32), (k, 1))
    sheen = _noise(rng, size, 1, 3)  # broad highlight varying across the brushing direction
    shade = 1 + rng.uniform(0.05, 0.1) * math.sqrt(k) * streaks + 0.07 * sheen
    angle = rng.uniform(-90, 90)
    shade = cv2.warpAffine(shade, cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0),
                           (size, size), borderMode=cv2.BORDER_REFLECT_101)
    return _mul(colour, shade)


def _galvanised(rng, size, base):
    colour = base if base is not None else _grey(rng, 0.6, 0.8, 0.015)
    cell = rng.uniform(10, 36)
    n = max(4, int(size * size / cell**2))
    sy, sx = rng.integers(0, size, n), rng.integers(0, size, n)
    src = np.ones((size, size), np.uint8)
    src[sy, sx] = 0
    # Each pixel takes the label of its nearest seed: Voronoi crystal cells in under a ms.
    _, labels = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, cv2.DIST_MASK_5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    k = int(labels.max()) + 1
    seed_x, seed_y = np.zeros(k, np.float32), np.zeros(k, np.float32)
    seed_x[labels[sy, sx]], seed_y[labels[sy, sx]] = sx, sy
    grey = rng.normal(0, 0.07, k).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, k)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    slope = rng.uniform(0, 0.08, k).astype(np.float32)
    y, x = _grid(size)
    local = ((x - seed_x[labels]) * cos[labels] + (y - seed_y[labels]) * sin[labels]) / cell
    shade = 1 + grey[labels] + slope[labels] * local + 0.02 * _fine(rng, size, 0.6)
    edge = np.zeros((size, size), bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    return _mul(colour, shade - np.float32(0.04) * edge)


def _rubber(rng, size, base):
    colour = base if base is not None else _grey(rng, 0.06, 0.2, 0.01)
    shade = 0.03 * _fine(rng, size, 0.8) + 0.015 * _noise(rng, size, 8)
    kind = rng.uniform()
    if kind < 0.6:  # moulded tread: raised dots or ribs
        y, x = _grid(size)
        pitch = np.float32(rng.uniform(10, 26))
        lx, ly = x % pitch - pitch / 2, y % pitch - pitch / 2
        if kind < 0.3:
            bump = np.clip(pitch * rng.uniform(0.2, 0.35) - np.hypot(lx, ly) + 0.5, 0, 1)
        else:
            bump = np.clip(pitch * rng.uniform(0.15, 0.3) - np.abs(ly) + 0.5, 0, 1)
        shade = shade + 0.06 * bump
    return _add(colour, shade)


def _concrete(rng, size, base):
    colour = base if base is not None else _grey(rng, 0.45, 0.72, 0.02)
    shade = (1 + 0.07 * _noise(rng, size, 4) + 0.04 * _noise(rng, size, 16)
             + 0.05 * _fine(rng, size, 0.6) + 0.04 * _fine(rng, size, 1.5))
    pits = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(20, 120))):
        px, py = rng.integers(0, size, 2)
        cv2.circle(pits, (int(px), int(py)), int(rng.integers(1, 5)),
                   int(rng.integers(90, 255)), -1, cv2.LINE_AA)
    shade *= 1 - 0.5 * pits / np.float32(255)
    return _mul(colour, shade)


_MATERIALS = {
    "wood": _wood,
    "felt": _felt,
    "cardboard": _cardboard,
    "plastic": _plastic,
    "brushed_metal": _brushed_metal,
    "galvanised": _galvanised,
    "rubber": _rubber,
    "concrete": _concrete,
}


def _wear(img: np.ndarray, rng: np.random.Generator, wear: float) -> np.ndarray:
    """Stains, scratches and (wear > 0.5) paper labels on float RGB ``img``, growing with wear."""
    size = img.shape[0]
    # Stains: where smooth noise exceeds a threshold that drops as wear grows.
    thr = 1.6 - 1.3 * wear
    dark = np.clip((_noise(rng, size, 5) - thr) * 2.0, 0, 1) * np.float32(rng.uniform(0.15, 0.35))
    light = np.clip((_noise(rng, size, 4) - thr - 0.2) * 2.0, 0, 1) * np.float32(0.25)
    # Scratches: thin lines, lighter than the surface on dark materials, darker on light ones.
    light_scratch, dark_scratch = np.zeros((2, size, size), np.uint8)
    n = int(round(wear * rng.uniform(40, 80)))
    start = rng.uniform(0, size, (n, 2))
    angle, length = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.01, 0.2, n) * size + 2
    end = start + length[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    p_light = 0.85 if _luma(img[::8, ::8].mean((0, 1))) < 0.5 else 0.25
    is_light = rng.uniform(size=n) < p_light
    value = rng.integers(80, 220, n)
    for p0, p1, lit, v in zip(start.astype(int), end.astype(int), is_light, value, strict=True):
        cv2.line(light_scratch if lit else dark_scratch, tuple(map(int, p0)), tuple(map(int, p1)),
                 int(v), 1, cv2.LINE_AA)
    scratch = light_scratch * np.float32(1 / 255)
    # All four layers as one per-pixel affine map, img * gain + offset: 3x less RGB work.
    gain = (1 - dark) * (1 - light) * (1 - scratch)
    offset = (0.8 * light * (1 - scratch) + 0.75 * scratch)
    keep = 1 - dark_scratch * np.float32(0.5 / 255)
    img = _add(_mul(img, gain * keep), offset * keep)
    if wear > 0.5:
        for _ in range(1 + int(rng.uniform() < 2 * (wear - 0.5))):
            w, h = int(rng.uniform(0.25, 0.4) * size), int(rng.uniform(0.15, 0.28) * size)
            label = _paper_label(rng, w, h)
            margin = 0.6 * math.hypot(w, h)
            centre = tuple(rng.uniform(margin, size - margin, 2))
            _stamp(img, np.full((h, w), 255, np.uint8), label, rng.uniform(-40, 40), centre)
    return img


def bin_texture(
    family: str,
    rng: np.random.Generator,
    size: int = 256,
    base_rgb: Colour | None = None,
    wear: float = 0.0,
) -> np.ndarray:
    """(size, size, 3) uint8 RGB texture of a bin floor or wall material.

    wood: grain (sinusoidal rings distorted by smooth noise, planks); felt: fine fibrous noise
    or a woven fabric; cardboard: brown with corrugation lines, speckles, sometimes tape;
    plastic: near-uniform colour (any tone, incl. white and black) with slight mottling;
    brushed_metal: grey with directional streaks; galvanised: spangle (Voronoi crystal cells of
    slightly different grey); rubber: dark with fine texture, sometimes a tread;
    concrete: grey noise with pits.

    base_rgb: RGB in [0, 1] replacing the material's drawn colour (plastic's colour).
    wear in [0, 1]: scratches (thin random lines), stains (soft dark and light blotches) and,
    above 0.5, one or two paper labels (white, black text/barcode); all grow with wear. The
    material is drawn first, so one rng state gives the same material at every wear.
    """
    if family not in _MATERIALS:
        raise ValueError(f"unknown bin family {family!r}; known: {', '.join(BIN_FAMILIES)}")
    if not 0.0 <= wear <= 1.0:
        raise ValueError(f"wear must be in [0, 1], got {wear}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    img = np.ascontiguousarray(_MATERIALS[family](rng, size, _base(base_rgb)), np.float32)
    if wear > 0:
        img = _wear(img, rng, wear)
    return _to_uint8(img)


# ----------------------------------------------------------------------------- packaging


def _shaded(rng, size, bg):
    """``bg`` with a faint lighting gradient and grain: a flat printed background."""
    y, x = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))) / size - 0.5
    shade = 0.03 * ramp + 0.015 * _noise(rng, size, 3) + 0.006 * _fine(rng, size, 0.7)
    return _add(bg, shade)


def _print_text(rng, size, bg):
    img = _shaded(rng, size, bg)
    for i in range(int(rng.integers(4, 10))):
        font = _FONTS[int(rng.integers(len(_FONTS)))] | (
            cv2.FONT_ITALIC if rng.uniform() < 0.2 else 0)
        brand = i == 0  # one big brand-like word, then smaller lines
        height = size * (rng.uniform(0.12, 0.22) if brand else rng.uniform(0.03, 0.1))
        text = " ".join(_word(rng) for _ in range(1 if brand else int(rng.integers(1, 4))))
        mask = _text_mask(text, font, height, max(1, round(height * rng.uniform(0.04, 0.12))))
        mask = _fit(mask, int(1.2 * size), mask.shape[0])  # long lines stay mostly on it
        angle = float(rng.choice([0, 0, 0, 90, -90, 180]))
        if rng.uniform() < 0.3:
            angle += rng.uniform(-20, 20)
        _stamp(img, mask, _contrasting(rng, bg), angle, tuple(rng.uniform(0.1, 0.9, 2) * size))
    return img


def _print_barcode(rng, size, bg):
    if rng.uniform() < 0.5:
        bg = np.array(tone_colour("white", rng), np.float32)
    img = _shaded(rng, size, bg)
    w, h = int(rng.uniform(0.55, 0.9) * size), int(rng.uniform(0.3, 0.55) * size)
    x0, y0 = int(rng.uniform(0, size - w)), int(rng.uniform(0, size - h))
    if _luma(bg) < 0.6:  # quiet zone: scanners need light around dark bars
        pad = max(2, size // 40)
        img[max(0, y0 - pad): y0 + h + pad, max(0, x0 - pad): x0 + w + pad] = tone_colour(
            "white", rng)
    mask = _barcode_mask(rng, w, h)
    if rng.uniform() < 0.25:
        mask = mask[::-1, ::-1]  # upside down; bars stay vertical
    ink = np.array(tone_colour("black", rng), np.float32)
    box = img[y0: y0 + h, x0: x0 + w]
    img[y0: y0 + h, x0: x0 + w] = _blend(box, ink, mask * np.float32(1 / 255))
    return img


def _star(n: int, inner: float) -> np.ndarray:
    a = np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _print_logo(rng, size, bg):
    img = _shaded(rng, size, bg)
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    for _ in range(int(rng.integers(2, 6))):
        mask = np.zeros((size, size), np.uint8)
        r = rng.uniform(0.08, 0.3) * size
        centre = np.array([cx, cy]) + rng.normal(0, 0.1 * size, 2)
        kind = rng.uniform()
        if kind < 0.3:
            cv2.circle(mask, tuple(int(v) for v in centre), int(r), 255,
                       -1 if rng.uniform() < 0.7 else max(2, int(r / 4)), cv2.LINE_AA)
        else:
            pts = (_star(int(rng.integers(4, 9)), rng.uniform(0.35, 0.6)) if kind < 0.6 else
                   _star(int(rng.integers(3, 9)), 1.0))  # star, or regular polygon
            rot = rng.uniform(0, 2 * np.pi)
            pts = pts @ np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
            cv2.fillPoly(mask, [np.round(pts * r + centre).astype(np.int32)], 255, cv2.LINE_AA)
        img = _blend(img, _contrasting(rng, bg), mask * np.float32(1 / 255))
    if rng.uniform() < 0.5:
        text = _text_mask(_word(rng), _FONTS[int(rng.integers(len(_FONTS)))], size * 0.1)
        text = _fit(text, int(0.9 * size), size)
        _stamp(img, text, _contrasting(rng, bg), 0.0, (size / 2, rng.uniform(0.75, 0.9) * size))
    return img


def _print_stripes(rng, size, bg):
    k = int(rng.integers(2, 5))
    palette = np.stack([bg, _contrasting(rng, bg)]
                       + [np.array(_random_tone(rng), np.float32) for _ in range(k - 2)])
    bounds = np.cumsum(rng.uniform(0.03, 0.2, k) * size).astype(np.float32)
    y, x = _grid(size)
    angle = rng.uniform(0, np.pi)
    u = (x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))
         + np.float32(rng.uniform(0, size))) % bounds[-1]
    img = palette[np.searchsorted(bounds, u, side="right").clip(0, k - 1)]
    return cv2.GaussianBlur(img, (0, 0), 0.6)  # soften the staircase edges


def _print_gradient(rng, size, bg):
    y, x = _grid(size)
    if rng.uniform() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        c, s = math.cos(angle), math.sin(angle)
        u = x * np.float32(c) + y * np.float32(s)
        corners = [0.0, size * c, size * s, size * (c + s)]
        t = (u - min(corners)) / (max(corners) - min(corners))
    else:
        cx, cy = rng.uniform(0, size, 2)
        t = np.hypot(x - np.float32(cx), y - np.float32(cy)) / np.float32(
            rng.uniform(0.5, 1.2) * size)
    n = int(rng.integers(2, 4))
    stops = np.stack([bg] + [np.array(_random_tone(rng), np.float32) for _ in range(n - 1)])
    pos = np.linspace(0, 1, n)
    dither = 0.004 * _fine(rng, size, 0.5)  # against banding
    return cv2.merge([np.interp(t, pos, stops[:, ch]).astype(np.float32) + dither
                      for ch in range(3)])


@functools.lru_cache(maxsize=len(PHOTOS))
def skimage_photo(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image: read-only (H, W, 3) uint8 RGB, longest side
    <= 512 px, grey photos as three equal channels. Read from disk, never downloaded."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    path = photo_dir() / PHOTOS[name]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"scikit-image photo {path} is missing or unreadable")
    scale = _PHOTO_MAX_SIDE / max(bgr.shape[:2])
    if scale < 1:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


def photo_dir() -> Path:
    """The data folder inside the installed scikit-image package."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-image is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _print_photo(rng, size, bg):
    names = tuple(PHOTOS)
    photo = skimage_photo(names[int(rng.integers(len(names)))])
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(h, w))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[y0: y0 + side, x0: x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    img = cv2.resize(crop, (size, size), interpolation=interp).astype(np.float32) / 255
    if rng.uniform() < 0.5:
        img = cv2.flip(img, 1)
    grey = np.array_equal(img[::4, ::4, 0], img[::4, ::4, 2])
    if grey and rng.uniform() < 0.5:  # printed as a duotone in the background colour
        img = _mul(0.25 + 0.75 * bg, img[..., 0].copy())
    if rng.uniform() < 0.5:  # a coloured band with a product name
        band_h = int(rng.uniform(0.12, 0.25) * size)
        top = 0 if rng.uniform() < 0.5 else size - band_h
        img[top: top + band_h] = bg
        text = _text_mask(_word(rng), _FONTS[int(rng.integers(len(_FONTS)))], band_h * 0.55)
        text = _fit(text, int(0.9 * size), band_h)
        half = text.shape[1] / 2
        _stamp(img, text, _contrasting(rng, bg), 0.0,
               (rng.uniform(half, size - half), top + band_h / 2))
    return img


def _print_pattern(rng, size, bg):
    ink = _contrasting(rng, bg)
    y, x = _grid(size)
    pitch = np.float32(rng.uniform(10, 40))
    kind = rng.uniform()
    if kind < 0.4:  # dots, on a square or staggered grid
        if rng.uniform() < 0.5:
            x = x + (y // pitch % 2) * (pitch / 2)
        d = np.hypot(x % pitch - pitch / 2, y % pitch - pitch / 2)
        alpha = np.clip(pitch * np.float32(rng.uniform(0.15, 0.4)) - d + 0.5, 0, 1)
    elif kind < 0.7:  # checks, square or diagonal
        if rng.uniform() < 0.4:
            x, y = (x + y) * np.float32(0.7071), (x - y) * np.float32(0.7071)
        alpha = ((x // pitch + y // pitch) % 2).astype(np.float32)
    else:  # chevrons
        v = y / pitch + np.abs(x / pitch % 1 - 0.5) * np.float32(rng.uniform(0.6, 1.6))
        alpha = (v % 1 < 0.5).astype(np.float32)
    img = _shaded(rng, size, bg)
    return _blend(img, ink, alpha)


_PRINTS = {
    "plain": _shaded,
    "text": _print_text,
    "barcode": _print_barcode,
    "logo": _print_logo,
    "stripes": _print_stripes,
    "gradient": _print_gradient,
    "photo": _print_photo,
    "pattern": _print_pattern,
}


def item_print(
    family: str,
    rng: np.random.Generator,
    size: int = 256,
    base_rgb: Colour | None = None,
) -> np.ndarray:
    """(size, size, 3) uint8 RGB packaging print for an item's surface.

    plain: the base colour with slight shading noise; text: product-like words in several
    Hershey fonts, sizes, colours and orientations over the base colour; barcode: a 1-D
    barcode (bars of random widths, vertical) with digits under it, on white or the base;
    logo: a few filled shapes (circles, rings, polygons, stars) in contrasting colours;
    stripes: bands in 2-4 colours at an angle; gradient: linear or radial colour gradient;
    photo: a crop of a scikit-image bundled photo (see ``PHOTOS``), maybe with a text band;
    pattern: repeated small shapes (dots, checks, chevrons).

    base_rgb: RGB in [0, 1] of the background (default: a colour of a random tone).
    """
    if family not in _PRINTS:
        raise ValueError(f"unknown print family {family!r}; known: {', '.join(PRINT_FAMILIES)}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    bg = _base(base_rgb)
    if bg is None:
        bg = np.array(_random_tone(rng), np.float32)
    return _to_uint8(np.asarray(_PRINTS[family](rng, size, bg), np.float32))
