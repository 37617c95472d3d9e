"""`perception bench`: frames/s and latency percentiles per node and for image transport.

Every entry reports ``fps``, ``latency_p50_ms`` and ``latency_p99_ms`` (plus counts). Timings
are wall-clock on this machine; compare runs only on the same machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.messages import camera_info_msg, stamp_ns
from perception_nodes.ros.qos import qos_by_name


def _stats(latencies_s: list[float], span_s: float, frames: int) -> dict:
    lat = np.asarray(latencies_s) * 1e3
    return {
        "fps": round(frames / span_s, 2) if span_s > 0 else 0.0,
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
        "latency_p99_ms": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
        "frames": frames,
    }


def bench_transport(width: int, height: int, seconds: float = 3.0) -> dict:
    """rgb8 images from a second process (transport_peer) to this one over DDS, reliable QoS;
    latency is receipt time minus the send time stamped in the header."""
    cmd = [sys.executable, "-m", "perception_nodes.eval.transport_peer", "--width", str(width),
           "--height", str(height), "--seconds", str(seconds)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=os.environ.copy())
    context = Context()
    rclpy.init(context=context)
    node = Node("bench_transport_sub", context=context)
    received: list[tuple[int, int]] = []
    node.create_subscription(Image, "bench/image",
                             lambda m: received.append(
                                 (time.time_ns(), stamp_ns(m.header.stamp))),
                             qos_by_name("reliable"))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + seconds + 30.0
    while proc.poll() is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(10):
        executor.spin_once(timeout_sec=0.01)
    sent = int((proc.communicate(timeout=10)[0] or "0").strip() or 0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    if len(received) < 2:
        return {"error": "no frames received", "sent": sent}
    arrivals = np.array([r[0] for r in received])
    span = (arrivals[-1] - arrivals[0]) * 1e-9
    out = _stats([(r - s) * 1e-9 for r, s in received], span, len(received) - 1)
    out.update(sent=sent, received=len(received), mb_per_s=round(
        out["fps"] * width * height * 3 / 1e6, 1))
    return out


def _time_calls(fn: Callable[[], object], repeats: int) -> dict:
    lat = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    return _stats(lat, time.perf_counter() - start, repeats)


def bench_sim_cell(width: int = 640, height: int = 480) -> dict:
    """The cell's camera: a streamed frame (cached render + fresh noise) and a full render."""
    from perception_nodes.sim.cell import CellConfig, PickingCell

    with PickingCell(CellConfig(width=width, height=height, min_items=15, max_items=15),
                     seed=0) as cell:
        cell.render()  # the first frame renders the scene; streamed frames reuse it
        streamed = _time_calls(cell.render, 30)

        def full() -> None:
            cell._cache = None  # a scene change forces a fresh render
            cell.render()

        fresh = _time_calls(full, 5)
    return {"streamed_frame": streamed, "full_render": fresh, "size": f"{width}x{height}",
            **bench_randomized_cell(width, height)}


def bench_randomized_cell(width: int = 640, height: int = 480, scenes: int = 8) -> dict:
    """Randomized looks (the train and novel domains): building a scene (bin, textures,
    items dropped and settled) and a full render with its sensor models, per scene."""
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import SPLIT_SEEDS, split_config

    out = {}
    for split in ("train", "novel"):
        builds, renders = [], []
        for k in range(scenes):
            t = time.perf_counter()
            cell = PickingCell(split_config(split, width, height), SPLIT_SEEDS[split][0] + k)
            builds.append(time.perf_counter() - t)
            t = time.perf_counter()
            cell.render()
            renders.append(time.perf_counter() - t)
            cell.close()
        out[f"randomized_{split}_scene_build"] = _stats(builds, sum(builds), scenes)
        out[f"randomized_{split}_full_render"] = _stats(renders, sum(renders), scenes)
    return out


def bench_image_conversion(width: int = 640, height: int = 480) -> dict:
    """numpy_to_image and image_to_numpy for rgb8 and 32FC1."""
    rgb = np.zeros((height, width, 3), np.uint8)
    depth = np.ones((height, width), np.float32)
    rgb_msg, depth_msg = numpy_to_image(rgb, "rgb8"), numpy_to_image(depth, "32FC1")
    return {
        "rgb8_to_msg": _time_calls(lambda: numpy_to_image(rgb, "rgb8"), 100),
        "rgb8_from_msg": _time_calls(lambda: image_to_numpy(rgb_msg), 100),
        "32FC1_to_msg": _time_calls(lambda: numpy_to_image(depth, "32FC1"), 100),
        "32FC1_from_msg": _time_calls(lambda: image_to_numpy(depth_msg), 100),
    }


def bench_camera_ingest(width: int = 640, height: int = 480, seconds: float = 4.0,
                        offered_hz: float = 30.0) -> dict:
    """camera_ingest relaying sim-source frames as they arrive (rate_hz 0), in one process;
    latency is probe receipt minus the frame stamp (feeder -> ingest -> probe)."""
    from perception_nodes.nodes.camera_ingest import CameraIngestNode

    context = Context()
    rclpy.init(context=context)
    ingest = CameraIngestNode(context=context,
                              parameter_overrides=[Parameter("rate_hz", value=0.0)])
    feeder = Node("bench_feeder", context=context)
    probe = Node("bench_probe", context=context)
    q = qos_by_name("reliable")
    pubs = [feeder.create_publisher(Image, "sim/color/image_raw", q),
            feeder.create_publisher(Image, "sim/depth/image_raw", q),
            feeder.create_publisher(CameraInfo, "sim/color/camera_info", q)]
    rgb = numpy_to_image(np.zeros((height, width, 3), np.uint8), "rgb8")
    depth = numpy_to_image(np.ones((height, width), np.float32), "32FC1")
    info = camera_info_msg(PinholeIntrinsics.from_fov(width, height, 45.0), Header())
    received: list[tuple[int, int]] = []
    probe.create_subscription(Image, "camera/color/image_raw",
                              lambda m: received.append(
                                 (time.time_ns(), stamp_ns(m.header.stamp))),
                              qos_by_name("sensor_data"))
    executor = SingleThreadedExecutor(context=context)  # rclpy's multi-threaded one is slower
    for n in (ingest, feeder, probe):
        executor.add_node(n)

    def feed() -> None:
        stamp = feeder.get_clock().now().to_msg()
        for pub, msg in zip(pubs, (rgb, depth, info), strict=True):
            msg.header.stamp = stamp
            pub.publish(msg)

    feeder.create_timer(1.0 / offered_hz, feed)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    time.sleep(seconds)
    counters = dict(ingest.health.counters)
    executor.shutdown(timeout_sec=2.0)
    spinner.join(timeout=5.0)
    for n in (ingest, feeder, probe):
        n.destroy_node()
    rclpy.try_shutdown(context=context)
    if len(received) < 2:
        return {"error": "no frames relayed", **counters}
    span = (received[-1][0] - received[0][0]) * 1e-9
    out = _stats([(r - s) * 1e-9 for r, s in received], span, len(received) - 1)
    out.update(offered_hz=offered_hz, dropped=counters.get("dropped", 0), size=f"{width}x{height}")
    return out


def bench_segmentation(width: int = 640, height: int = 480, repeats: int = 30) -> dict:
    """Latency of each segmentation mode on one sim frame, with the committed models."""
    from perception_nodes.inference.onnx_model import ModelError, resolve_model
    from perception_nodes.inference.segmenter import MODES, SegmenterRunner, label_image, run_mode

    try:
        latent = SegmenterRunner(resolve_model("latent_segmenter"), "auto")
        baseline = SegmenterRunner(resolve_model("baseline_segmenter"), "auto")
    except ModelError as exc:
        return {"error": str(exc)}
    rgb, above = _sim_frame(width, height)
    out = {"size": f"{width}x{height}", "provider": latent.provider, "num_samples": 8,
           "inputs": "RGB-D" if latent.needs_height else "RGB",
           "measures": "image (and height) in, label + confidence images out (what the node "
           "publishes)"}

    def segment(runner: SegmenterRunner, mode: str) -> None:
        label_image(run_mode(runner, rgb, mode, height=above), rgb.shape[:2], 0.3, rgb)

    runners = {mode: baseline if mode == "baseline" else latent for mode in MODES}
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    for mode in MODES:
        segment(runners[mode], mode)  # warm-up
    # Modes interleaved frame by frame: a machine whose speed drifts (shared cores) then
    # drifts for every mode alike, and the ratio between modes stays fair.
    for _ in range(repeats):
        for mode in MODES:
            start = time.perf_counter()
            segment(runners[mode], mode)
            latencies[mode].append(time.perf_counter() - start)
    for mode in MODES:
        out[mode] = _stats(latencies[mode], sum(latencies[mode]), repeats)
    out["confidence_mask_over_prior_mean"] = round(
        out["confidence_mask"]["latency_p50_ms"] / out["prior_mean"]["latency_p50_ms"], 3)
    return out


def _sim_frame(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One test-split frame: ``rgb`` and its height above the calibrated floor (metres)."""
    from perception_nodes.core.floor_plane import height_above_plane
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    with PickingCell(split_config("test", width, height), seed=200_000) as cell:
        frame = cell.render()
        return frame.rgb, height_above_plane(frame.depth, frame.intrinsics,
                                             cell.floor_plane())


def bench_superpixel(width: int = 640, height: int = 480, repeats: int = 50) -> dict:
    """Superpixel mode end to end (image in, label image out, as the node publishes) and
    the grid SLIC step against OpenCV's SLIC (one iteration) and scikit-image's."""
    import cv2
    from skimage.segmentation import slic

    from perception_nodes.core.grid_slic import grid_slic
    from perception_nodes.inference.onnx_model import ModelError, resolve_model
    from perception_nodes.inference.superpixel import SuperpixelRunner

    rgb, above = _sim_frame(width, height)
    out: dict = {"size": f"{width}x{height}", "cell": 8}

    def opencv_slic() -> None:
        algo = cv2.ximgproc.createSuperpixelSLIC(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB),
                                                 cv2.ximgproc.SLIC, 8, 10.0)
        algo.iterate(1)
        algo.getLabels()

    grid_slic(rgb, 8)
    out["grid_slic"] = _time_calls(lambda: grid_slic(rgb, 8), repeats)
    opencv_slic()
    out["opencv_slic_1_iteration"] = _time_calls(opencv_slic, repeats)
    out["skimage_slic"] = _time_calls(
        lambda: slic(rgb, n_segments=width * height // 64, compactness=10.0, start_label=0), 3)
    p50 = out["grid_slic"]["latency_p50_ms"]
    out["grid_slic_speedup_over_opencv"] = round(
        out["opencv_slic_1_iteration"]["latency_p50_ms"] / p50, 2)
    out["grid_slic_speedup_over_skimage"] = round(out["skimage_slic"]["latency_p50_ms"] / p50,
                                                  1)
    try:
        runners = {name: SuperpixelRunner(resolve_model(name), "auto")
                   for name in ("superpixel_segmenter_int8", "superpixel_segmenter")}
    except ModelError as exc:
        out["end_to_end"] = {"error": str(exc)}
        return out
    out["provider"] = runners["superpixel_segmenter"].provider
    for name, runner in runners.items():
        out[f"instances_{name}"] = len(runner.segment(rgb, height=above).scores)
        out[f"end_to_end_{name}"] = _time_calls(
            lambda r=runner: r.segment(rgb, height=above), repeats)
        runner.close()
    return out


def bench_grasp_regions(repeats: int = 30) -> dict:
    """Latency of :func:`plan_grasps` (labels + depth in, safe regions + ranked candidates
    out) on sim frames with their ground-truth labels and 8 samples for the risk."""
    from perception_nodes.core.grasp_regions import GraspParams, outside_polygon, plan_grasps
    from perception_nodes.sim.cell import CellConfig, PickingCell, tray_floor_polygon

    out = {"measures": "labels, confidence, 8 sample label images and depth in; safe-region "
                       "image and ranked candidates out (the grasp_regions node's core)"}
    for width, height, stride in ((320, 240, 1), (640, 480, 1), (640, 480, 2)):
        with PickingCell(CellConfig(width=width, height=height), seed=200_000) as cell:
            frame = cell.render()
        ignore = outside_polygon(frame.labels.shape,
                                 tray_floor_polygon(frame.camera_pose, frame.intrinsics))
        samples = np.stack([frame.labels[::4, ::4]] * 8)
        conf = np.ones(frame.labels.shape, np.float32)
        params = GraspParams(stride_px=stride)
        latencies = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            plan = plan_grasps(frame.labels, frame.depth, frame.intrinsics, None, params, conf,
                               samples, ignore)
            latencies.append(time.perf_counter() - start)
        latencies = latencies[1:]  # the first call warms caches
        out[f"{width}x{height} stride {stride}"] = {
            **_stats(latencies, sum(latencies), repeats),
            "candidates": len(plan.candidates)}
    return out


def bench_anomaly(repeats: int = 20) -> dict:
    """Latency of the anomaly node's core (:meth:`AnomalyDetector.detect`: pixel score from
    the segmentation model with 4 latent samples, 50 FPS prompts, masks, NMS, ensemble) on an
    ``anomaly_test`` frame, with the learned prompt model and with region growing."""
    from perception_nodes.inference.anomaly import AnomalyDetector
    from perception_nodes.inference.onnx_model import resolve_model
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    out = {"measures": "RGB-D frame in; anomaly score, instance masks and refined score out "
                       "(the anomaly node's core, CPU)"}
    for width, height in ((320, 240), (640, 480)):
        cfg = split_config("anomaly_test", width, height)
        with PickingCell(cfg, seed=400_000) as cell:
            frame = cell.render()
            plane, ignore = cell.calibrate_floor_plane(), cell.outside_tray(0.0)
        for method in ("model", "region_grow"):
            det = AnomalyDetector(resolve_model("anomaly_segmenter"),
                                  resolve_model("prompt_segmenter"), None, 4, "cpu", 0,
                                  method)
            args = (frame.rgb, frame.depth, frame.intrinsics, plane, ignore)
            det.detect(*args)  # warm-up
            out[f"{width}x{height} {method}"] = _time_calls(
                lambda d=det, a=args: d.detect(*a), repeats)
    return out


def bench_depth(repeats: int = 30) -> dict:
    """Latency of the depth node's core (:meth:`MonoDepthEstimator.metric`: the model at its
    input size, the resize back to the image and the floor-plane scale) on a test frame."""
    from perception_nodes.inference.depth import MonoDepthEstimator
    from perception_nodes.inference.onnx_model import resolve_model
    from perception_nodes.sim.cell import PickingCell
    from perception_nodes.sim.dataset import split_config

    est = MonoDepthEstimator(resolve_model("mono_depth"), "cpu")
    out = {"measures": "RGB frame in; metric depth aligned to it out (the depth node's core, "
                       f"CPU; model input {est.input_size[1]}x{est.input_size[0]})"}
    for width, height in ((320, 240), (640, 480)):
        with PickingCell(split_config("test", width, height), seed=200_000) as cell:
            frame = cell.render()
            plane, region = cell.calibrate_floor_plane(), ~cell.outside_tray(0.02)
        args = (frame.rgb, frame.intrinsics, plane, region)
        est.metric(*args)  # warm-up (and the floor depth image, made once per camera)
        out[f"{width}x{height}"] = _time_calls(lambda a=args: est.metric(*a), repeats)
    return out


def bench_pipeline_graph() -> dict:
    """Camera image -> grasp candidates through the nodes as processes (pipeline_bench)."""
    from perception_nodes.eval.pipeline_bench import bench_pipeline

    return bench_pipeline()


BENCHES: dict[str, Callable[[], dict]] = {
    "transport": lambda: {"640x480": bench_transport(640, 480),
                          "1280x720": bench_transport(1280, 720)},
    "image_conversion": bench_image_conversion,
    "sim_cell": bench_sim_cell,
    "camera_ingest": bench_camera_ingest,
    "segmentation": bench_segmentation,
    "superpixel": bench_superpixel,
    "grasp_regions": bench_grasp_regions,
    "anomaly": bench_anomaly,
    "depth": bench_depth,
    "pipeline": bench_pipeline_graph,
    "adversarial": lambda: __import__("perception_nodes.eval.adversarial",
                                      fromlist=["bench_adversarial"]).bench_adversarial(),
    "bag_eval": lambda: __import__("perception_nodes.eval.bag_eval",
                                   fromlist=["bench_bag_eval"]).bench_bag_eval(),
}


def run_benches(only: list[str] | None = None) -> dict:
    """Run the named benches (all by default) and return one JSON-ready dict."""
    names = only or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise ValueError(f"unknown bench {unknown}; known: {sorted(BENCHES)}")
    results = {name: BENCHES[name]() for name in names}
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "results": results,
    }
