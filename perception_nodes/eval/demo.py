"""`perception demo`: the stack on the simulated cell for a bounded time, recorded.

Writes ``RUN/bag`` (MCAP: camera, ground truth, picks), ``RUN/overlays/*.png`` and
``RUN/summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
from rclpy.node import Node

from perception_nodes.bringup import Bringup
from perception_nodes.core.camera_model import matrix_from_quaternion
from perception_nodes.core.overlay import draw_label_overlay, draw_points
from perception_nodes.resources import default_config
from perception_nodes.ros.bags import BagRecorder, deserialize, read_bag
from perception_nodes.ros.image_conversion import image_to_numpy
from perception_nodes.ros.messages import intrinsics_from_camera_info

DEMO_TOPICS = {
    "/camera/color/image_raw": "sensor_msgs/msg/Image",
    "/camera/color/camera_info": "sensor_msgs/msg/CameraInfo",
    "/camera/depth/image_raw": "sensor_msgs/msg/Image",
    "/sim/instance_labels": "sensor_msgs/msg/Image",
    "/sim/camera_pose": "geometry_msgs/msg/PoseStamped",
    "/arm/pick_request": "geometry_msgs/msg/PoseStamped",
    "/arm/pick_outcome": "diagnostic_msgs/msg/DiagnosticArray",
    "/arm/suction_gauge": "std_msgs/msg/Float32MultiArray",
    "/sim/pick/before/image_raw": "sensor_msgs/msg/Image",
    "/sim/pick/after/image_raw": "sensor_msgs/msg/Image",
    "/segmentation/instance_labels": "sensor_msgs/msg/Image",
    "/segmentation/confidence": "sensor_msgs/msg/Image",
    "/segmentation/instance_scores": "sensor_msgs/msg/Image",
    "/segmentation/overlay": "sensor_msgs/msg/Image",
    "/segmentation/sample_labels": "sensor_msgs/msg/Image",
    "/grasp/safe_regions": "sensor_msgs/msg/Image",
    "/grasp/candidates": "geometry_msgs/msg/PoseArray",
    "/grasp/candidate_info": "sensor_msgs/msg/Image",
    "/grasp/markers": "visualization_msgs/msg/MarkerArray",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


def _stamp(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def write_overlays(bag: Path, out_dir: Path, every: int = 10) -> list[Path]:
    """Ground-truth overlays of every ``every``-th camera frame and of each picked frame,
    with the pick point marked, and the segmentation node's overlay of the same frame beside
    it when the bag has one; returns the PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, labels, infos, picks, segmented = {}, {}, {}, [], {}
    for topic, msgtype, _, raw in read_bag(bag):
        msg = deserialize(raw, msgtype)
        if topic == "/camera/color/image_raw":
            frames[_stamp(msg)] = msg
        elif topic == "/sim/instance_labels":
            labels[_stamp(msg)] = msg
        elif topic == "/camera/color/camera_info":
            infos[_stamp(msg)] = msg
        elif topic == "/arm/pick_request":
            picks.append(msg)
        elif topic == "/segmentation/overlay":
            segmented[_stamp(msg)] = msg
    written = []
    picked = {_stamp(m): m for m in picks}
    for i, stamp in enumerate(sorted(frames)):
        if stamp not in labels or (i % every and stamp not in picked):
            continue
        rgb = image_to_numpy(frames[stamp])
        image = draw_label_overlay(rgb, image_to_numpy(labels[stamp]).astype(np.uint16))
        name = f"frame_{stamp[0]}_{stamp[1]:09d}"
        if stamp in picked and stamp in infos:
            pose = picked[stamp].pose
            point = np.array([[pose.position.x, pose.position.y, pose.position.z]])
            pixel = intrinsics_from_camera_info(infos[stamp]).project(point)
            image = draw_points(image, pixel, (255, 0, 0))
            rot = matrix_from_quaternion([pose.orientation.x, pose.orientation.y,
                                          pose.orientation.z, pose.orientation.w])
            tip = intrinsics_from_camera_info(infos[stamp]).project(point + 0.04 * rot[:, 2])
            cv2.line(image, tuple(int(round(c)) for c in pixel[0]),
                     tuple(int(round(c)) for c in tip[0]), (255, 255, 0), 2)
            name += "_pick"
        if stamp in segmented:
            seg = image_to_numpy(segmented[stamp])
            if seg.shape == image.shape:
                image = np.hstack([image, seg])
        path = out_dir / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written.append(path)
    return written


def summarise(bag: Path) -> dict:
    """Counts of frames and pick outcomes in a demo bag."""
    counts: dict[str, int] = {}
    outcomes = {"single": 0, "double": 0, "none": 0}
    for topic, msgtype, _, raw in read_bag(bag):
        counts[topic] = counts.get(topic, 0) + 1
        if topic == "/arm/pick_outcome":
            values = {kv.key: kv.value for kv in deserialize(raw, msgtype).status[0].values}
            lifted = int(values["items_lifted"])
            outcomes["single" if lifted == 1 else "double" if lifted > 1 else "none"] += 1
    return {"messages": counts, "picks": outcomes}


def run_demo(duration_s: float, out_root: Path, config: Path | str | None = None,
             overrides: dict | None = None) -> Path:
    """Run the configured stack for ``duration_s`` seconds; returns the run folder."""
    run_dir = Path(out_root) / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=False)
    with Bringup(config, overrides=overrides) as bringup:
        rec_node = Node("perception_recorder", context=bringup.context)
        recorder = BagRecorder(rec_node, run_dir / "bag", DEMO_TOPICS)
        bringup.add_node(rec_node)
        bringup.start()
        bringup.run_for(duration_s)
        bringup.stop()  # no callbacks may race the bag's close
        recorder.close()
    overlays = write_overlays(run_dir / "bag", run_dir / "overlays")
    summary = summarise(run_dir / "bag")
    summary.update(duration_s=duration_s, overlays=len(overlays),
                   config=str(config or default_config()))
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.rename(run_dir / "summary.json")
    return run_dir
