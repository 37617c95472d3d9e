"""Real camera input: bags shaped like three common drivers (topic layout, encodings, frame
ids, lens distortion) replayed through camera_ingest (source driver), segmentation and
grasp_regions to grasp candidates; distortion is removed, and depth that is not registered
to colour is refused with what to enable in the driver."""

import time

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from sensor_msgs.msg import Image

from perception_nodes.bringup import Bringup
from perception_nodes.core.rectify import Rectifier
from perception_nodes.ros.bags import BagPlayer, BagWriter
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.messages import camera_info_msg
from perception_nodes.sim.cell import CellConfig, PickingCell

# driver -> (colour topic, encoding, depth topic, depth encoding, info topic, frame id,
# distortion model, coefficients): the drivers' documented default layouts
LAYOUTS = {
    "realsense": ("/camera/camera/color/image_raw", "rgb8",
                  "/camera/camera/aligned_depth_to_color/image_raw", "16UC1",
                  "/camera/camera/color/camera_info", "camera_color_optical_frame",
                  "plumb_bob", [-0.06, 0.07, 0.0005, -0.0003, -0.02]),
    "orbbec": ("/camera/color/image_raw", "bgr8", "/camera/depth/image_raw", "16UC1",
               "/camera/color/camera_info", "camera_color_optical_frame",
               "rational_polynomial", [0.3, -0.1, 0.0002, 0.0001, 0.01, 0.6, -0.1, 0.02]),
    "zivid": ("/zivid/color/image_color", "rgba8", "/zivid/depth/image", "32FC1",
              "/zivid/color/camera_info", "zivid_optical_frame", "plumb_bob", [0.0] * 5),
}


@pytest.fixture(scope="module")
def scene():
    with PickingCell(CellConfig(width=320, height=240, min_items=4, max_items=6), 2) as cell:
        return cell.render()


def _distort(image: np.ndarray, k: np.ndarray, d: list[float], nearest: bool) -> np.ndarray:
    """What a lens with ``d`` shows of the undistorted ``image``: each distorted pixel
    samples the undistorted image where its ray goes."""
    h, w = image.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2)
    und = cv2.undistortPoints(grid.astype(np.float64), k, np.array(d), P=k).reshape(h, w, 2)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(image, und[..., 0].astype(np.float32), und[..., 1].astype(np.float32),
                     interp, borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan")
                     if image.dtype == np.float32 else 0)


def _driver_bag(path, layout, frame, depth_scale: int = 1) -> None:
    color_t, color_enc, depth_t, depth_enc, info_t, frame_id, model, d = layout
    k = frame.intrinsics.matrix
    rgb = _distort(frame.rgb, k, d, nearest=False)
    depth = _distort(frame.depth, k, d, nearest=True)
    colour = {"rgb8": rgb, "bgr8": rgb[..., ::-1].copy(),
              "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])}[color_enc]
    if depth_scale > 1:  # an unregistered depth camera of another resolution
        depth = depth[::depth_scale, ::depth_scale].copy()
    depth_msg = np.nan_to_num(depth * 1000).round().astype(np.uint16) \
        if depth_enc == "16UC1" else depth
    with BagWriter(path) as writer:
        for i in range(3):
            t = 1_000_000_000 + i * 200_000_000
            img = numpy_to_image(colour, color_enc)
            img.header.stamp.sec, img.header.stamp.nanosec = 1, i * 200_000_000
            img.header.frame_id = frame_id
            info = camera_info_msg(frame.intrinsics, img.header)
            info.distortion_model, info.d = model, list(d)
            for topic, msg in ((color_t, img), (info_t, info),
                               (depth_t, numpy_to_image(depth_msg, depth_enc, img.header))):
                writer.write(topic, msg, t)


def _run(ros_context, bag, layout) -> tuple[list, list, object]:
    color_t, _, depth_t, _, info_t, frame_id, _, _ = layout
    # the stack in a namespace of its own, as in a cell: the drivers' /camera/... names
    # would collide with its relative camera/... topics in the root namespace
    bringup = Bringup(nodes=["camera_ingest", "segmentation", "grasp_regions"],
                      context=ros_context, namespace="cell1", overrides={
                          "camera_ingest": {"source": "driver", "driver_color_topic": color_t,
                                            "driver_depth_topic": depth_t,
                                            "driver_info_topic": info_t,
                                            "frame_id": frame_id, "rate_hz": 0.0},
                          "segmentation": {"mode": "geometric", "max_fps": 0.0}})
    probe = Node("driver_probe", context=ros_context)
    got: dict[str, list] = {"candidates": [], "color": []}
    probe.create_subscription(PoseArray, "/cell1/grasp/candidates", got["candidates"].append,
                              10)
    probe.create_subscription(Image, "/cell1/camera/color/image_raw", got["color"].append, 10)
    player = BagPlayer(probe, bag)
    bringup.add_node(probe)
    bringup.start()
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not all(
                p.get_subscription_count() for p in player.publishers.values()):
            time.sleep(0.05)
        player.play()
        while time.monotonic() < end and len(got["candidates"]) < 3:
            time.sleep(0.05)
        ingest = bringup.nodes["camera_ingest"]
        health = dict(ingest.health.counters), ingest.health.last_error
    finally:
        bringup.shutdown()
    return got["candidates"], got["color"], health


@pytest.mark.parametrize("driver", sorted(LAYOUTS))
def test_a_driver_bag_reaches_candidates_undistorted(ros_context, tmp_path, scene, driver):
    layout = LAYOUTS[driver]
    _driver_bag(tmp_path / "bag", layout, scene)
    candidates, colour, (counters, error) = _run(ros_context, tmp_path / "bag", layout)
    assert counters["malformed"] == 0, error
    assert len(candidates) == 3 and all(c.poses for c in candidates)
    assert candidates[0].header.frame_id == layout[5]
    rectified = image_to_numpy(colour[0]).astype(float)
    centre = (slice(40, 200), slice(50, 270))  # away from the border the lens crops
    err = np.abs(rectified[centre] - scene.rgb[centre]).mean()
    distorted = _distort(scene.rgb, scene.intrinsics.matrix, layout[7], nearest=False)
    before = np.abs(distorted[centre].astype(float) - scene.rgb[centre]).mean()
    # resampling twice blurs a little; what the lens bent is straightened
    assert err < 6.0 and (not any(layout[7]) or err < 0.9 * before)


def test_depth_not_registered_to_colour_is_refused_with_the_fix(ros_context, tmp_path, scene):
    layout = LAYOUTS["realsense"]
    _driver_bag(tmp_path / "bag", layout, scene, depth_scale=2)
    candidates, _, (counters, error) = _run(ros_context, tmp_path / "bag", layout)
    assert not candidates and counters["malformed"] == 3
    assert "not registered" in error and "align_depth.enable:=true" in error


def test_rectifier_undoes_a_known_distortion(scene):
    k, d = scene.intrinsics.matrix, [-0.2, 0.05, 0.001, 0.0, 0.0]
    rect = Rectifier(k, np.array(d), "plumb_bob", scene.rgb.shape[:2])
    depth = rect.depth(_distort(scene.depth, k, d, nearest=True))
    centre = (slice(40, 200), slice(50, 270))
    ok = np.isfinite(depth[centre]) & np.isfinite(scene.depth[centre])
    assert np.median(np.abs(depth[centre][ok] - scene.depth[centre][ok])) < 1e-3
    assert Rectifier(k, np.zeros(5), "plumb_bob", (240, 320)).identity
    with pytest.raises(ValueError, match="not supported"):
        Rectifier(k, np.array([0.1, 0, 0, 0]), "equidistant", (240, 320))
