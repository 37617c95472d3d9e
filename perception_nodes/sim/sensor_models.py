"""Physically motivated models of three depth-sensing principles and of a colour camera.

The simulated cell renders clean RGB-D frames; these models turn a clean z-depth render
(``(H, W) float32`` metres, NaN invalid, see :mod:`perception_nodes.core.conventions`) and the
aligned ``(H, W, 3) uint8`` RGB render into what a real sensor of each kind would deliver:

- ``"structured_light"`` (Kinect v1 / PrimeSense class): a projector to the camera's left
  (baseline along the optical ``-x`` axis) casts an IR pattern; depth comes from the pattern's
  disparity. Axial noise grows with ``z^2``, depth is quantised in inverse depth, the pattern is
  lost on dark (absorbing) and glossy (specular) surfaces and at depth edges, and the projector
  cannot light a band of background beside each foreground edge (projector shadow).
- ``"stereo"`` (passive block-matching stereo, left camera as reference, right camera at
  ``+x``): Gaussian noise in disparity, so depth noise grows as ``z^2 / (fx b)``; block matching
  blends and fattens foreground edges; untextured regions fail to match; the left border, whose
  matches would fall outside the right image, and background the right camera cannot see are
  invalid.
- ``"tof"`` (continuous-wave time of flight, Azure Kinect class): low axial noise that grows
  with distance and falls with reflectance (dark pixels are noisier, not missing); pixels that
  straddle a depth edge mix the near and far returns ("flying pixels"); a few multipath
  outliers read too far inside concave corners.

All randomness comes from the ``np.random.Generator`` passed in, so a seed reproduces a frame
exactly. Everything is vectorised numpy / OpenCV.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.conventions import check_image

DEPTH_SENSORS: tuple[str, ...] = ("structured_light", "stereo", "tof")

# --- shared ---------------------------------------------------------------------------------
# A pixel lies on a depth discontinuity when the spread of valid depth in its 3x3 neighbourhood
# exceeds both an absolute jump and ``_EDGE_SLOPE`` pixel footprints (z / fx): over the two-pixel
# span of the window that is a surface inclined more than atan(2) ~ 63 deg from fronto-parallel.
_EDGE_MIN_JUMP_M = 0.01
_EDGE_SLOPE = 4.0
# Occlusion (projector shadow, stereo half-occlusion) is declared when a nearer surface covers
# a pixel's ray by more than this many pixels.
_OCCLUSION_TOL_PX = 0.5
_NO_OCCLUDER = np.float32(-np.inf)

# --- structured light -----------------------------------------------------------------------
_SL_SIGMA0_M = 0.0012  # Nguyen, Izadi & Lovell (3DIMPVT 2012): 1.2 mm + 1.9 mm/m^2 (z - 0.4)^2
_SL_SIGMA2_M = 0.0019
_SL_INV_DEPTH_STEP = 0.001  # 1/m: a depth step of 1 mm at 1 m, growing as z^2 (disparity)
_SL_EDGE_DROPOUT = 0.5  # share of discontinuity pixels that read invalid
_SL_DARK_LEVEL = 0.25  # pattern signal (grey albedo / z^2, 1 at white, 1 m) where holes start
_SL_DARK_DROPOUT = 0.95  # hole probability on a black surface
_SL_GLOSSY_DROPOUT = 0.6  # hole probability on a specular surface
_SL_ALBEDO = (np.arange(256) / 255.0).astype(np.float32)  # grey level as IR albedo proxy

# --- stereo ---------------------------------------------------------------------------------
# sub-pixel matching noise of a 640-pixel-wide sensor (semi-global matching with its filters);
# a frame rendered at another width is that sensor's image resampled, so the noise in its
# pixels scales with the width (the depth noise does not)
_ST_DISP_SIGMA_PX = 0.08
_ST_NATIVE_WIDTH = 640
_ST_SUBPIXEL = 16  # disparity resolution 1/16 px (as OpenCV SGBM)
_ST_BLOCK = 5  # matching window, pixels (edge blend and fattening reach block // 2)
_ST_TEXTURE_WINDOW = 7  # window of the local grey-level standard deviation
_ST_TEXTURE_STD = 4.0  # grey-level std (digital numbers) above which matching is reliable
# hole probability on a perfectly flat-grey region: low, since bin-picking stereo cameras
# project an IR pattern that gives flat surfaces texture; a share still fails
_ST_TEXTURELESS_DROPOUT = 0.15
_ST_GLOSSY_DROPOUT = 0.4  # view-dependent highlights break left-right consistency

# --- time of flight -------------------------------------------------------------------------
_TOF_SIGMA0_M = 0.0005  # sigma = 0.5 mm + 1.0 mm * (z / 1 m)^2 / sqrt(reflectance)
_TOF_SIGMA2_M = 0.0010
_TOF_MIN_REFLECTANCE = 0.01  # floor of the reflectance proxy (x10 noise on black)
_TOF_FLYING_PROB = 0.5  # share of discontinuity pixels that read a near/far mixture
_TOF_MULTIPATH_CONCAVITY_M = 0.005  # deeper than the local mean by this much: concave
_TOF_MULTIPATH_PROB = 0.03  # share of concave pixels with a multipath outlier
_TOF_MULTIPATH_BIAS_M = (0.01, 0.03)  # extra path of an outlier (reads too far)
_TOF_GLOSSY_DROPOUT = 0.2  # specular highlights saturate the pixel

# Reflectance proxy of each grey level: sRGB-like gamma 2.2 to linear albedo, floored.
_TOF_NOISE_GAIN = (
    1.0
    / np.sqrt(np.clip((np.arange(256) / 255.0) ** 2.2, _TOF_MIN_REFLECTANCE, 1.0))
).astype(np.float32)


@dataclass(frozen=True)
class DepthSensor:
    """A depth sensor of kind ``kind`` (one of :data:`DEPTH_SENSORS`).

    ``baseline_m`` is the projector-camera (structured light) or stereo baseline; it sets the
    projector shadow and stereo occlusion widths, ``fx * baseline_m * (1/z_near - 1/z_far)``
    pixels, the stereo noise ``z^2 / (fx * baseline_m)`` and the stereo left invalid band
    (``fx * baseline_m / z`` pixels). ToF ignores it. ``noise_scale`` multiplies the kind's
    noise level (axial / disparity noise only; holes, shadows and flying pixels keep their
    rates). Measurements outside ``[min_range_m, max_range_m]`` read invalid (NaN).
    """

    kind: str
    baseline_m: float = 0.05
    noise_scale: float = 1.0
    min_range_m: float = 0.2
    max_range_m: float = 3.0

    def __post_init__(self) -> None:
        if self.kind not in DEPTH_SENSORS:
            raise ValueError(f"unknown depth sensor kind {self.kind!r}; one of {DEPTH_SENSORS}")
        if not self.baseline_m > 0 or not self.noise_scale >= 0:
            raise ValueError(f"bad baseline {self.baseline_m} or noise scale {self.noise_scale}")
        if not 0 < self.min_range_m < self.max_range_m:
            raise ValueError(f"bad range [{self.min_range_m}, {self.max_range_m}]")

    def apply(self, depth: np.ndarray, rgb: np.ndarray, intrinsics: PinholeIntrinsics,
              rng: np.random.Generator, glossy: np.ndarray | None = None) -> np.ndarray:
        """A noisy (H, W) float32 depth in metres, NaN invalid, from a clean render.

        ``depth`` is the clean z-depth render (NaN / non-positive = no return), ``rgb`` the
        aligned clean colour render (its grey level stands in for the surface's IR albedo and
        texture), ``intrinsics`` the camera's (``fx`` sets pixel footprints and disparities).
        glossy: optional (H, W) bool of shiny surfaces.

        Invalid input stays NaN, pixels whose clean or measured depth leaves the range read NaN,
        and the result is never negative.
        """
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"expected (H, W) depth, got {depth.shape}")
        check_image(rgb)
        shape = depth.shape
        if rgb.shape[:2] != shape or (intrinsics.height, intrinsics.width) != shape:
            raise ValueError(f"depth {shape}, rgb {rgb.shape[:2]} and intrinsics "
                             f"{intrinsics.height}x{intrinsics.width} differ in size")
        if glossy is not None:
            glossy = np.asarray(glossy, dtype=bool)
            if glossy.shape != shape:
                raise ValueError(f"glossy mask {glossy.shape} does not match depth {shape}")
            if not glossy.any():
                glossy = None
        z = np.array(depth, dtype=np.float32)  # a copy; invalid pixels hold 0 below
        with np.errstate(invalid="ignore"):
            invalid = ~(np.isfinite(z) & (z > 0))
        np.copyto(z, 0, where=invalid)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        model = {"structured_light": self._structured_light, "stereo": self._stereo,
                 "tof": self._tof}[self.kind]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out, holes = model(z, invalid, grey, float(intrinsics.fx), rng, glossy)
            lo, hi = np.float32(self.min_range_m), np.float32(self.max_range_m)
            good = z >= lo  # invalid input holds 0 < lo
            good &= z <= hi
            good &= out >= lo  # False for NaN
            good &= out <= hi
            good &= ~holes
        out[~good] = np.nan
        return out

    # -- kinds ----------------------------------------------------------------------------------

    def _structured_light(self, z, invalid, grey, fx, rng, glossy):
        """Kinect-class structured light.

        - Axial noise ``sigma(z) = (1.2 mm + 1.9 mm/m^2 (z - 0.4)^2) * noise_scale``.
        - Quantisation in inverse depth (the pattern's disparity), 0.001 / m: 1 mm steps at
          1 m, 4 mm at 2 m.
        - Half of the pixels on depth discontinuities drop out (the correlation window
          straddles two surfaces).
        - The projector sits at ``-x`` (image ``-u``): behind each foreground edge whose far
          side lies towards ``+u``, a band ``fx b (1/z_near - 1/z_far)`` pixels wide receives
          no pattern and reads NaN (projector shadow), found exactly per row by comparing each
          pixel's projector column ``u + fx b / z`` with the running maximum to its left.
        - Pattern signal falls with albedo (grey level / 255) and as ``1/z^2``: below 0.25
          (white at 1 m = 1) the hole probability rises linearly to 0.95 on black. Glossy
          pixels lose the pattern to specular reflection with probability 0.6. These holes
          come in blobs a few pixels across, as on real sensors.
        """
        shape = z.shape
        holes = _sample_mask(_edges(z, invalid, fx)[0], _SL_EDGE_DROPOUT, rng)
        key = np.divide(np.float32(fx * self.baseline_m), z)  # projector disparity
        np.copyto(key, _NO_OCCLUDER, where=invalid)
        holes |= _occluded(key, toward_plus_u=True)

        sigma = z - np.float32(0.4)
        sigma *= sigma
        sigma *= np.float32(_SL_SIGMA2_M)
        sigma += np.float32(_SL_SIGMA0_M)
        sigma *= np.float32(self.noise_scale)
        out = _standard_normal(shape, rng)
        out *= sigma
        out += z
        inv_step = np.float32(1 / _SL_INV_DEPTH_STEP)  # z = C / round(C / z), C = 1 / step
        np.divide(inv_step, out, out=out)
        np.rint(out, out=out)
        np.divide(inv_step, out, out=out)

        keep = np.maximum(z, np.float32(0.1), out=sigma)  # P(no hole) = 1 - P(hole)
        keep *= keep
        np.divide(_SL_ALBEDO[grey], keep, out=keep)  # pattern signal: albedo / z^2
        keep *= np.float32(_SL_DARK_DROPOUT / _SL_DARK_LEVEL)
        keep += np.float32(1 - _SL_DARK_DROPOUT)
        _drop_blobs(keep, glossy, _SL_GLOSSY_DROPOUT, holes, rng)
        return out, holes

    def _stereo(self, z, invalid, grey, fx, rng, glossy):
        """Passive block-matching stereo, left camera as reference, right camera at ``+x``.

        - Disparity ``d = fx b / z`` carries Gaussian matching noise of 0.08 px of a
          640-wide sensor (``* width / 640 * noise_scale``) and is quantised to 1/16 px, so
          depth noise grows as ``z^2 / (fx b) * 0.08 px`` (about 2 mm at 0.9 m).
        - Within ``_ST_BLOCK // 2`` (2) pixels of a depth discontinuity the 5x5 matching
          window straddles both surfaces: disparity becomes the mean of the window's maximum
          (the textured foreground wins: foreground fattening) and its mean (blend), so edges
          bleed into the background with intermediate depths.
        - Untextured regions fail to match: with ``s`` the local grey-level standard deviation
          (7x7), the hole probability is ``0.15 * max(0, 1 - s / 4)`` (blobby holes); glossy
          pixels add holes with probability 0.4. Clean flat-shaded renders count as
          untextured.
        - Pixels whose match ``u - d`` would fall left of the right image (the left border
          band, as wide as the disparity, plus half a block) and background the right camera
          cannot see (left of foreground edges, ``fx b (1/z_near - 1/z_far)`` wide) are
          invalid.
        """
        shape = z.shape
        edge = _edges(z, invalid, fx)[0]
        fxb = np.float32(fx * self.baseline_m)
        disparity = np.divide(fxb, z)
        np.copyto(disparity, _NO_OCCLUDER, where=invalid)
        holes = _occluded(disparity, toward_plus_u=False)
        np.copyto(disparity, 0, where=invalid)  # infinitely far

        kernel = np.ones((_ST_BLOCK, _ST_BLOCK), np.uint8)
        band = cv2.dilate(edge.view(np.uint8), kernel).view(bool)
        if band.any():
            block = (_ST_BLOCK, _ST_BLOCK)
            blend = cv2.boxFilter(disparity, -1, block, normalize=not invalid.any())
            if invalid.any():  # average over valid pixels only
                blend /= np.maximum(cv2.boxFilter((~invalid).astype(np.float32), -1, block,
                                                  normalize=False), 1)
            blend += cv2.dilate(disparity, kernel)
            blend *= np.float32(0.5)
            band &= ~invalid
            np.copyto(disparity, blend, where=band)
        noise = _standard_normal(shape, rng)
        noise *= np.float32(_ST_DISP_SIGMA_PX * shape[1] / _ST_NATIVE_WIDTH
                            * self.noise_scale)
        disparity += noise
        disparity *= np.float32(_ST_SUBPIXEL)
        np.rint(disparity, out=disparity)
        disparity *= np.float32(1 / _ST_SUBPIXEL)
        holes |= disparity > np.arange(-(_ST_BLOCK // 2), shape[1] - _ST_BLOCK // 2,
                                       dtype=np.float32)
        out = np.divide(fxb, disparity, out=disparity)  # d <= 0: inf / negative, out of range

        std = grey.astype(np.float32)
        win = (_ST_TEXTURE_WINDOW, _ST_TEXTURE_WINDOW)
        mean = cv2.blur(std, win)
        std *= std
        cv2.blur(std, win, dst=std)
        mean *= mean
        std -= mean
        np.maximum(std, 0, out=std)
        keep = np.sqrt(std, out=std)  # P(no hole) = 1 - 0.5 max(0, 1 - s / 8)
        keep *= np.float32(_ST_TEXTURELESS_DROPOUT / _ST_TEXTURE_STD)
        keep += np.float32(1 - _ST_TEXTURELESS_DROPOUT)
        _drop_blobs(keep, glossy, _ST_GLOSSY_DROPOUT, holes, rng)
        return out, holes

    def _tof(self, z, invalid, grey, fx, rng, glossy):
        """Continuous-wave time of flight (Azure Kinect class).

        - Axial noise ``sigma = (0.5 mm + 1.0 mm (z / 1 m)^2 / sqrt(rho)) * noise_scale``: the
          returned signal falls as ``rho / z^2`` with reflectance ``rho`` (grey level through a
          2.2 gamma, floored at 0.01), and phase noise goes as one over the square root of the
          signal (shot noise). Dark pixels are noisier, not missing.
        - Flying pixels: half of the pixels on a depth discontinuity integrate both surfaces
          and read ``t z_near + (1 - t) z_far`` with ``t ~ U(0, 1)``, ``z_near`` / ``z_far``
          the 3x3 neighbourhood's extremes.
        - Multipath: in concave regions (deeper than the local mean, over a window of about
          W / 40 pixels, by 5 mm, e.g. a floor beside a wall), 3 % of pixels read 1-3 cm too
          far.
        - Glossy pixels saturate and read invalid with probability 0.2.
        """
        shape = z.shape
        edge, z_near, z_far = _edges(z, invalid, fx)
        out = z.copy()
        flying = np.flatnonzero(_sample_mask(edge, _TOF_FLYING_PROB, rng))
        t = rng.random(flying.size, dtype=np.float32)
        out.flat[flying] = t * z_near.flat[flying] + (1 - t) * z_far.flat[flying]

        k = 2 * max(2, shape[1] // 80) + 1
        concave = cv2.boxFilter(z, -1, (k, k), dst=z_near, normalize=not invalid.any())
        if invalid.any():  # mean over valid pixels only
            concave /= np.maximum(cv2.boxFilter((~invalid).astype(np.float32), -1, (k, k),
                                                normalize=False), 1)
        np.subtract(z, concave, out=concave)
        multipath = _sample_mask(concave > _TOF_MULTIPATH_CONCAVITY_M, _TOF_MULTIPATH_PROB, rng)
        multipath = np.flatnonzero(multipath & ~invalid)
        out.flat[multipath] += rng.uniform(*_TOF_MULTIPATH_BIAS_M, size=multipath.size).astype(
            np.float32)

        sigma = np.take(_TOF_NOISE_GAIN, grey, out=z_far)
        sigma *= z
        sigma *= z
        sigma *= np.float32(_TOF_SIGMA2_M)
        sigma += np.float32(_TOF_SIGMA0_M)
        sigma *= np.float32(self.noise_scale)
        noise = _standard_normal(shape, rng)
        noise *= sigma
        out += noise
        holes = np.zeros(shape, dtype=bool)
        if glossy is not None:
            holes = glossy & (_blob_uniform(shape, rng) < _TOF_GLOSSY_DROPOUT)
        return out, holes


@dataclass(frozen=True)
class ColourCamera:
    """Colour effects of a real camera on a clean render.

    ``white_balance`` multiplies the R, G, B channels (an uncorrected illuminant tints the
    image), ``blur_sigma_px`` is the standard deviation of a Gaussian blur (defocus, motion)
    and ``noise_sigma`` the read noise in digital numbers. The noise is shot-like: its
    standard deviation ``noise_sigma * sqrt(1 + 2 I / 255)`` grows with intensity ``I`` (to
    ``sqrt(3)`` times the read noise at white).
    """

    noise_sigma: float = 2.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur_sigma_px: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_sigma < 0 or self.blur_sigma_px < 0:
            raise ValueError(f"bad noise {self.noise_sigma} or blur {self.blur_sigma_px}")
        if len(self.white_balance) != 3 or min(self.white_balance) < 0:
            raise ValueError(f"white balance must be three gains >= 0, got {self.white_balance}")

    def apply(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8: white-balance gains, then blur, then noise (shot-like: sigma
        grows a little with intensity), clipped."""
        check_image(rgb)
        img = rgb.astype(np.float32)
        if tuple(self.white_balance) != (1.0, 1.0, 1.0):
            cv2.multiply(img, (*map(float, self.white_balance), 0.0), dst=img)
        if self.blur_sigma_px > 0:
            cv2.GaussianBlur(img, (0, 0), sigmaX=self.blur_sigma_px, dst=img,
                             sigmaY=self.blur_sigma_px, borderType=cv2.BORDER_REFLECT_101)
        if self.noise_sigma > 0:
            sigma = np.clip(img, 0, 255)
            sigma *= np.float32(2 / 255)
            sigma += 1
            np.sqrt(sigma, out=sigma)
            sigma *= np.float32(self.noise_sigma)
            sigma *= _standard_normal(img.shape, rng)
            img += sigma
        np.rint(img, out=img)
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8)


# --- helpers ------------------------------------------------------------------------------------


def _edges(z: np.ndarray, invalid: np.ndarray, fx: float):
    """Discontinuity mask and the 3x3 minimum / maximum of valid depth.

    ``z`` is float32 with invalid pixels at 0, ``invalid`` their mask. A valid pixel is on an
    edge when its neighbourhood's valid depths spread more than ``max(1 cm, 4 z / fx)``;
    invalid neighbours are ignored.
    """
    kernel = np.ones((3, 3), np.uint8)
    z_near = z.copy()
    np.copyto(z_near, np.float32(1e6), where=invalid)
    cv2.erode(z_near, kernel, dst=z_near)
    z_far = cv2.dilate(z, kernel)  # invalid pixels hold 0: never the maximum of a valid pixel
    spread = np.subtract(z_far, z_near)
    edge = spread > np.float32(_EDGE_MIN_JUMP_M)
    spread /= z
    edge &= spread > np.float32(_EDGE_SLOPE / fx)
    edge &= ~invalid
    return edge, z_near, z_far


def _occluded(disparity: np.ndarray, toward_plus_u: bool) -> np.ndarray:
    """Pixels hidden from a second viewpoint displaced along the image rows.

    ``disparity`` is ``fx b / z`` (``-inf`` where there is no surface). For a viewpoint at
    ``-x`` (``toward_plus_u``: the structured-light projector) a pixel's column in the second
    view is ``u + d``; it is hidden when some pixel to its left maps further right by more than
    the tolerance. For a viewpoint at ``+x`` (a right stereo camera) the row is mirrored.
    """
    columns = np.arange(disparity.shape[1], dtype=np.float32)
    key = (disparity if toward_plus_u else disparity[:, ::-1]) + columns
    running = np.maximum.accumulate(key, axis=1)
    key += np.float32(_OCCLUSION_TOL_PX)
    hidden = np.zeros(key.shape, dtype=bool)
    np.greater(running[:, :-1], key[:, 1:], out=hidden[:, 1:])
    return hidden if toward_plus_u else np.ascontiguousarray(hidden[:, ::-1])


@functools.cache
def _normal_table() -> np.ndarray:
    """Standard normal quantiles at the centres of 65536 equal-probability bins, float32,
    rescaled to unit variance (the tails are cut at 4.3 sigma)."""
    dist = NormalDist()
    table = np.array([dist.inv_cdf((i + 0.5) / 65536) for i in range(65536)])
    return (table / table.std()).astype(np.float32)


def _standard_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian float32 samples by inverse-CDF lookup of 16-bit uniforms: several times
    faster than ``Generator.standard_normal`` and plenty for sensor noise."""
    index = rng.integers(0, 65536, size=int(np.prod(shape)), dtype=np.uint16)
    return np.take(_normal_table(), index).reshape(shape)


def _sample_mask(mask: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """A random subset of ``mask``, each pixel kept with probability ``prob``."""
    index = np.flatnonzero(mask)
    out = np.zeros(mask.shape, dtype=bool)
    out.flat[index[rng.random(index.size) < prob]] = True
    return out


def _drop_blobs(keep: np.ndarray, glossy: np.ndarray | None, glossy_dropout: float,
                holes: np.ndarray, rng: np.random.Generator) -> None:
    """Add holes in blobs where a pixel survives with probability ``keep`` (clipped to 1,
    times ``1 - glossy_dropout`` on glossy pixels); ``keep`` is overwritten, ``holes``
    updated in place."""
    np.minimum(keep, 1, out=keep)
    if glossy is not None:
        np.multiply(keep, np.float32(1 - glossy_dropout), out=keep, where=glossy)
    if keep.min() < 1:
        holes |= _blob_uniform(keep.shape, rng) > keep


def _blob_cell(width: int) -> int:
    """Correlation length of blob noise in pixels: about 4 px at VGA."""
    return max(2, width // 160)


@functools.lru_cache(maxsize=16)
def _upsampling_gain(n_out: int, n_in: int) -> np.ndarray:
    """Per-row ``1 / sqrt(sum of squared weights)`` of OpenCV's linear resize from ``n_in``
    to ``n_out`` samples: rescales linearly interpolated unit Gaussians to unit variance."""
    weights = cv2.resize(np.eye(n_in, dtype=np.float32), (n_in, n_out),
                         interpolation=cv2.INTER_LINEAR)
    return (1.0 / np.sqrt((weights.astype(np.float64) ** 2).sum(1))).astype(np.float32)


def _blob_uniform(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A spatially correlated field, marginally (close to) uniform on ``[0, 1]``.

    Unit Gaussians on a grid ``_blob_cell`` pixels apart, linearly upsampled and rescaled to
    unit variance at every pixel, pass through the logistic approximation of the normal CDF
    (error < 0.01), so ``field < p`` holds for a share ``p`` of pixels, in blobs.
    """
    height, width = shape
    cell = _blob_cell(width)
    h_in, w_in = -(-height // cell) + 1, -(-width // cell) + 1
    coarse = rng.standard_normal((h_in, w_in), dtype=np.float32)
    h_out, w_out = h_in * cell, w_in * cell
    field = cv2.resize(coarse, (w_out, h_out), interpolation=cv2.INTER_LINEAR)[:height, :width]
    field *= _upsampling_gain(h_out, h_in)[:height, None]
    field *= _upsampling_gain(w_out, w_in)[None, :width]
    field *= np.float32(-1.702)
    np.exp(field, out=field)
    field += 1
    return np.reciprocal(field, out=field)
