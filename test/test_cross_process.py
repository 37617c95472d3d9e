"""The configured stack with every node in its own process, as ``ros2 launch`` runs it: for
30 s, the frames segmentation publishes reach grasp candidates."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from geometry_msgs.msg import PoseArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from perception_nodes.bringup import load_config
from perception_nodes.eval.processes import start_nodes
from perception_nodes.ros.qos import qos_by_name

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "perception.yaml"
WINDOW_S = 30.0


def _stamp(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_every_node_its_own_process_frames_reach_grasp_candidates(ros_context, tmp_path):
    names, _ = load_config(CONFIG)
    assert {"segmentation", "grasp_regions", "camera_ingest", "sim_cell"} <= set(names)
    procs = start_nodes(names, CONFIG, params={
        "grasp_capture": {"dataset_dir": str(tmp_path / "grasps")}})
    probe = Node("cross_process_probe", context=ros_context)
    labels: dict[tuple[int, int], float] = {}
    candidates: dict[tuple[int, int], float] = {}
    reliable = qos_by_name("reliable")
    probe.create_subscription(Image, "segmentation/instance_labels",
                              lambda m: labels.setdefault(_stamp(m), time.monotonic()),
                              reliable)
    probe.create_subscription(PoseArray, "grasp/candidates",
                              lambda m: candidates.setdefault(_stamp(m), time.monotonic()),
                              reliable)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(probe)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.1)
                                               for _ in iter(stop.is_set, True)], daemon=True)
    spinner.start()
    try:
        end = time.monotonic() + 120  # imports, model loads, the first scene
        while time.monotonic() < end and not candidates:
            dead = [n for n, p in procs.items() if not p.alive()]
            assert not dead, {n: procs[n].output[-2000:] for n in dead}
            time.sleep(0.2)
        assert candidates, {n: p.output[-1500:] for n, p in procs.items()}
        start = time.monotonic()
        time.sleep(WINDOW_S)
        cutoff = time.monotonic() - 2.0  # frames still in flight at the end do not count
        time.sleep(2.0)
    finally:
        stop.set()
        spinner.join(timeout=5)
        codes = {n: p.stop() for n, p in procs.items()}
        probe.destroy_node()
    window = [s for s, t in labels.items() if start <= t <= cutoff]
    delivered = [s for s in window if s in candidates]
    # the pipeline is alive: the sim renders 5 Hz between picks, but it pauses while a pick
    # executes, and on 2 cores six processes share the CPU (RGB-H segmentation fits the floor
    # per frame): 0.77 Hz and up measured over 30 s; the delivery share is the check
    assert len(window) >= WINDOW_S / 2, len(window)
    # 100 % with the colour models; with RGB-H segmentation the 2 cores are saturated and
    # grasp_regions drops a frame now and then to keep up (36 of 38 in one CI run): 90 %
    assert len(delivered) >= 0.9 * len(window), (len(delivered), len(window))
    for name, code in codes.items():
        assert code == 0 and "Traceback" not in procs[name].output, procs[name].output[-3000:]
