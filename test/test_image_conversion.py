"""Image <-> numpy: round trips, views, malformed messages, and a cross-check against
rosbags-image decoding the same CDR bytes."""

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.image import message_to_cvimage
from sensor_msgs.msg import Image

from perception_nodes.ros.bags import deserialize
from perception_nodes.ros.image_conversion import (
    ENCODINGS,
    ImageConversionError,
    image_to_numpy,
    image_to_rgb,
    numpy_to_image,
)


def _sample(encoding: str, h: int = 5, w: int = 7) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(3)
    shape = (h, w, channels) if channels > 1 else (h, w)
    if dtype == np.float32:
        return rng.uniform(0.2, 3.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_is_exact_and_a_view(encoding):
    arr = _sample(encoding)
    msg = numpy_to_image(arr, encoding)
    assert msg.step == arr.shape[1] * arr.itemsize * (arr.shape[2] if arr.ndim == 3 else 1)
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == arr.dtype
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_matches_rosbags_image_on_the_same_cdr_bytes(encoding):
    arr = _sample(encoding, 6, 9)
    msg = numpy_to_image(arr, encoding)
    theirs = message_to_cvimage(deserialize(bytes(serialize_message(msg)),
                                            "sensor_msgs/msg/Image"))
    np.testing.assert_array_equal(np.asarray(theirs).reshape(arr.shape), image_to_numpy(msg))


def test_padded_rows_and_big_endian_are_read():
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4)
    msg = Image(height=3, width=4, encoding="mono16", is_bigendian=1, step=10)
    rows = [arr[r].astype(">u2").tobytes() + b"\xff\xff" for r in range(3)]
    msg.data = b"".join(rows)
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.uint16


def test_driver_colour_encodings_read_as_rgb():
    bgr = _sample("bgr8")
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(bgr, "bgr8")), bgr[..., ::-1])
    mono = _sample("mono8")
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(mono, "mono8")),
                                  np.dstack([mono] * 3))
    rgba = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(rgba, "rgba8")), bgr)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(rgba, "bgra8")), bgr[..., ::-1])
    with pytest.raises(ImageConversionError, match="colour"):
        image_to_rgb(numpy_to_image(_sample("mono16"), "mono16"))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"encoding": "yuv422"}, "unsupported encoding"),
        ({"height": 0}, "empty image"),
        ({"step": 20}, "shorter than"),
        ({"data": bytes(10)}, "expected step\\*height"),
        ({"encoding": "mono16", "step": 21, "data": bytes(105)}, "multiple"),
    ],
)
def test_malformed_messages_raise_clear_errors(fields, match):
    msg = numpy_to_image(_sample("rgb8"), "rgb8")  # 5 x 7, step 21
    for key, value in fields.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=match):
        image_to_numpy(msg)


def test_numpy_to_image_rejects_wrong_dtype_or_shape():
    with pytest.raises(ImageConversionError):
        numpy_to_image(np.zeros((4, 4), np.float64), "32FC1")
    with pytest.raises(ImageConversionError):
        numpy_to_image(np.zeros((4, 4, 4), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError):
        numpy_to_image(np.zeros((0, 4), np.uint16), "mono16")


def test_depth_reads_as_metres_from_either_encoding_and_checks_registration():
    from perception_nodes.ros.image_conversion import image_to_depth_m

    mm = np.array([[0, 1500], [900, 65535]], np.uint16)
    # 65535 (a sensor's saturation code, 65.5 m) is beyond any bin camera: invalid
    np.testing.assert_array_equal(image_to_depth_m(numpy_to_image(mm, "16UC1")),
                                  np.array([[np.nan, 1.5], [0.9, np.nan]], np.float32))
    m = np.array([[np.nan, 0.5]], np.float32)
    np.testing.assert_array_equal(image_to_depth_m(numpy_to_image(m, "32FC1"), (1, 2, 3)), m)
    with pytest.raises(ImageConversionError, match="registered"):
        image_to_depth_m(numpy_to_image(m, "32FC1"), (2, 2))
    with pytest.raises(ImageConversionError, match="32FC1"):
        image_to_depth_m(numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8"))


def test_depth_no_sensor_measures_is_invalid_not_geometry():
    from perception_nodes.ros.image_conversion import DEPTH_RANGE_M, image_to_depth_m

    one_mm = np.ones((3, 4), np.uint16)  # 16UC1 of 1 mm everywhere
    assert np.isnan(image_to_depth_m(numpy_to_image(one_mm, "16UC1"))).all()
    m = np.array([[1e-6, 1e30, -1.0, np.inf, 0.8]], np.float32)
    got = image_to_depth_m(numpy_to_image(m, "32FC1"))
    assert np.isnan(got[0, :4]).all() and got[0, 4] == np.float32(0.8)
    flipped = numpy_to_image(np.full((2, 2), 0.9, np.float32), "32FC1")
    flipped.is_bigendian = 1 - flipped.is_bigendian  # a wrong endianness flag
    got = image_to_depth_m(flipped)
    assert not ((got >= DEPTH_RANGE_M[0]) & (got <= DEPTH_RANGE_M[1])).any()


def test_a_frame_over_the_pixel_bound_is_refused_before_its_data_is_read():
    from sensor_msgs.msg import Image

    from perception_nodes.ros.image_conversion import MAX_IMAGE_PIXELS, image_to_numpy

    msg = Image(height=MAX_IMAGE_PIXELS, width=2, encoding="mono8", step=2)
    with pytest.raises(ImageConversionError, match="over the"):
        image_to_numpy(msg)
