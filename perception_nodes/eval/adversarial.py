"""Adversarial depth frames: inputs that are valid messages but worst cases for the per-frame
geometry (plane fits, local surfaces, footprint search). The benchmark times them
(`perception bench --only adversarial`); a test checks that each frame terminates.

Each case goes through the path a node takes: the depth message's conversion
(``image_to_depth_m``, which makes values no camera measures invalid), the floor used for
height (``height_for_frame``: RANSAC when no floor is calibrated, as the segmentation node
does), and the grasp planner (``plan_grasps``, as grasp_regions).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.grasp_regions import GraspParams, plan_grasps
from perception_nodes.inference.geometric import height_for_frame
from perception_nodes.ros.image_conversion import image_to_depth_m, numpy_to_image
from perception_nodes.ros.messages import MAX_FOCAL_WIDTHS


def adversarial_frames(height: int = 480, width: int = 640, seed: int = 0
                       ) -> Iterator[tuple[str, np.ndarray, np.ndarray, PinholeIntrinsics]]:
    """``(name, labels (H, W) uint16, depth message array (H, W) float32 m or uint16 mm,
    intrinsics)`` of each case."""
    rng = np.random.default_rng(seed)
    cam = PinholeIntrinsics.from_fov(width, height, 45.0)
    longest = MAX_FOCAL_WIDTHS * max(width, height) * 0.99  # the longest lens accepted
    tele = PinholeIntrinsics(width, height, longest, longest, cam.cx, cam.cy)
    rows, cols = np.indices((height, width))
    one = np.ones((height, width), np.uint16)
    blocks = (rows // 40 * (width // 40 + 1) + cols // 40 + 1).astype(np.uint16)
    pixels = (rows * width + cols) % 65535 + 1
    flat = np.full((height, width), 0.9, np.float32)
    yield "flat_one_item", one, flat, cam
    yield "depth_1mm_16uc1", one, np.ones((height, width), np.uint16), cam
    yield "nearest_valid_depth", one, np.full((height, width), 0.05, np.float32), cam
    yield "nearest_depth_longest_lens", one, np.full((height, width), 0.05, np.float32), tele
    yield "uniform_noise_depth", blocks, rng.uniform(0.05, 20.0, (height, width)).astype(
        np.float32), cam
    yield "checkerboard_depth", one, np.where((rows + cols) % 2, 0.3, 0.9).astype(
        np.float32), cam
    yield "every_pixel_an_item", pixels.astype(np.uint16), flat, cam
    yield "many_items_stepped", blocks, (flat - blocks % 7 * 0.02).astype(np.float32), cam
    yield "nan_everywhere", one, np.full((height, width), np.nan, np.float32), cam
    yield "three_valid_pixels", one, np.where((rows < 1) & (cols < 3), 0.9, np.nan).astype(
        np.float32), cam


def run_case(labels: np.ndarray, depth_array: np.ndarray, intrinsics: PinholeIntrinsics,
             params: GraspParams | None = None) -> dict:
    """One frame through conversion, floor/height and the planner; seconds per stage and
    what came out (a stage that refuses the frame, as the node would, reports why)."""
    encoding = "16UC1" if depth_array.dtype == np.uint16 else "32FC1"
    out: dict = {}
    start = time.perf_counter()
    depth = image_to_depth_m(numpy_to_image(depth_array, encoding))
    out["convert_s"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        height = height_for_frame(depth, intrinsics, None)
        out["height_valid"] = int(np.isfinite(height).sum())
    except ValueError as exc:
        out["height_refused"] = str(exc)
    out["height_s"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        plan = plan_grasps(labels, depth, intrinsics, params=params or GraspParams(stride_px=2))
        out["candidates"] = len(plan.candidates)
    except ValueError as exc:
        out["plan_refused"] = str(exc)
    out["plan_s"] = time.perf_counter() - start
    out["total_s"] = out["convert_s"] + out["height_s"] + out["plan_s"]
    return out


def bench_adversarial(height: int = 480, width: int = 640, repeats: int = 3) -> dict:
    """Per case: the slowest of ``repeats`` frames (ms per stage), and the worst case."""
    results = {}
    for name, labels, depth, cam in adversarial_frames(height, width):
        runs = [run_case(labels, depth, cam) for _ in range(repeats)]
        worst = max(runs, key=lambda r: r["total_s"])
        results[name] = {k: round(v * 1e3, 1) if k.endswith("_s") else v
                         for k, v in worst.items()}
        results[name] = {k.replace("_s", "_ms") if k.endswith("_s") else k: v
                         for k, v in results[name].items()}
    slowest = max(results, key=lambda n: results[n]["total_ms"])
    return {"size": f"{width}x{height}", "cases": results, "slowest_case": slowest,
            "slowest_total_ms": results[slowest]["total_ms"]}
