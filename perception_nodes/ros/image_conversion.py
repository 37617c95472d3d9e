"""sensor_msgs/Image <-> numpy, validated. Replaces cv_bridge, which is not on PyPI.

``image_to_numpy`` returns a view of the message buffer whenever the host byte order matches
and rows are not padded beyond whole elements; otherwise a copy. Malformed messages raise
:class:`ImageConversionError` with the reason.
"""

from __future__ import annotations

import re
import sys

import numpy as np
from sensor_msgs.msg import Image

from perception_nodes.core.conventions import (  # noqa: F401 - DEPTH_RANGE_M re-exported
    DEPTH_RANGE_M,
    depth_mm_to_m,
    invalidate_unmeasurable,
)

# encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
_HOST_BIG_ENDIAN = sys.byteorder == "big"
# OpenCV-style encodings with any channel count, as cv_bridge reads them ("16UC8": k = 8
# latent samples' label images stacked as channels)
_MULTI_CHANNEL = re.compile(r"^(8U|16U|32F)C([1-9][0-9]?)$")
_MULTI_DTYPES = {"8U": np.dtype(np.uint8), "16U": np.dtype(np.uint16),
                 "32F": np.dtype(np.float32)}


def _encoding(encoding: str) -> tuple[np.dtype, int] | None:
    """``(dtype, channels)`` of an encoding, None if unsupported."""
    if encoding in ENCODINGS:
        return ENCODINGS[encoding]
    match = _MULTI_CHANNEL.match(encoding)
    return (_MULTI_DTYPES[match[1]], int(match[2])) if match else None


# the largest frame a node takes (a 16 MP camera): work per frame stays bounded
MAX_IMAGE_PIXELS = 4096 * 4096


class ImageConversionError(ValueError):
    """A message that cannot be read as an image of its declared encoding."""


def image_to_numpy(msg: Image) -> np.ndarray:
    """Read an Image as ``(H, W)`` or ``(H, W, C)`` array of its encoding's dtype.

    Raises:
        ImageConversionError: unknown encoding, zero size, over ``MAX_IMAGE_PIXELS``, a
            step too short for the width,
            a step that is not a whole number of elements, or a data length that is not
            ``step * height``.
    """
    info = _encoding(msg.encoding)
    if info is None:
        raise ImageConversionError(
            f"unsupported encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)} and "
            "8UC(n), 16UC(n), 32FC(n)")
    dtype, channels = info
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"empty image {width}x{height}")
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageConversionError(f"image {width}x{height} is over the {MAX_IMAGE_PIXELS} "
                                   "pixels a node processes per frame")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is shorter than a {msg.encoding} row of width {width} ({row_bytes} B)")
    if step % dtype.itemsize:
        raise ImageConversionError(f"step {step} is not a multiple of {dtype.itemsize} B")
    if len(msg.data) != step * height:
        raise ImageConversionError(
            f"data has {len(msg.data)} B, expected step*height = {step * height} B")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    elem = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    rows = buf.reshape(height, step)[:, :row_bytes]
    arr = rows.view(elem) if step == row_bytes else np.ascontiguousarray(rows).view(elem)
    arr = arr.reshape((height, width, channels) if channels > 1 else (height, width))
    if bool(msg.is_bigendian) != _HOST_BIG_ENDIAN and dtype.itemsize > 1:
        arr = arr.astype(dtype)
    return arr


# what camera drivers publish, read as RGB (RealSense rgb8, Orbbec and OpenCV bgr8, Zivid
# rgba8/bgra8, monochrome cameras mono8)
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def image_to_rgb(msg: Image) -> np.ndarray:
    """Read a colour Image as ``(H, W, 3) uint8`` RGB: rgb8 as a view; bgr8, rgba8, bgra8
    and mono8 converted."""
    if msg.encoding not in COLOUR_ENCODINGS:
        raise ImageConversionError(f"expected a colour image ({', '.join(COLOUR_ENCODINGS)}),"
                                   f" got {msg.encoding!r}")
    arr = image_to_numpy(msg)
    if msg.encoding == "rgb8":
        return arr
    if msg.encoding == "mono8":
        return np.repeat(arr[..., None], 3, axis=2)
    rgb = arr[..., :3]
    return np.ascontiguousarray(rgb[..., ::-1] if msg.encoding.startswith("bgr") else rgb)


def image_to_array(msg: Image, dtype: type, what: str) -> np.ndarray:
    """Read an Image that must hold ``dtype`` elements (labels: uint16, confidence:
    float32), whatever its channel count; ImageConversionError naming ``what`` otherwise."""
    arr = image_to_numpy(msg)
    if arr.dtype != np.dtype(dtype):
        raise ImageConversionError(f"{what} must be {np.dtype(dtype)}, got {msg.encoding!r}")
    return arr




def image_to_depth_m(msg: Image, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a depth Image as ``(H, W) float32`` metres, NaN invalid: 32FC1 as it is, 16UC1
    millimetres (0 invalid) converted, and every value outside ``DEPTH_RANGE_M`` made
    invalid; with ``shape``, the ``(H, W)`` of the image it must be registered to.

    Raises:
        ImageConversionError: another encoding, a malformed image, or another size.
    """
    if msg.encoding not in ("32FC1", "16UC1"):
        raise ImageConversionError(f"depth must be 32FC1 (m) or 16UC1 (mm), got "
                                   f"{msg.encoding!r}")
    depth = image_to_numpy(msg)
    if depth.dtype == np.uint16:
        depth = depth_mm_to_m(depth)
    if shape is not None and depth.shape != tuple(shape[:2]):
        raise ImageConversionError(f"depth {depth.shape} is not registered to the image "
                                   f"{tuple(shape[:2])}")
    return invalidate_unmeasurable(depth)


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """Build an Image of ``encoding`` from an array of the matching dtype and shape.

    Raises:
        ImageConversionError: unknown encoding, or dtype/shape that do not fit it.
    """
    info = _encoding(encoding)
    if info is None:
        raise ImageConversionError(f"unsupported encoding {encoding!r}")
    dtype, channels = info
    arr = np.asarray(array)
    expected_ndim = 3 if channels > 1 else 2
    wrong_channels = channels > 1 and arr.ndim == 3 and arr.shape[2] != channels
    if arr.dtype != dtype or arr.ndim != expected_ndim or wrong_channels:
        raise ImageConversionError(
            f"{encoding} needs {dtype} with {channels} channel(s), got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageConversionError(f"empty image {arr.shape}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_HOST_BIG_ENDIAN)
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg
