"""`perception bench --only pipeline`: camera image -> grasp candidates through the running
nodes, the way ros2_benchmark measures a graph.

A player in this process publishes the frames of a committed bag (colour, 16UC1 depth, camera
info; ``test/data/pipeline_bag``, 640x480) at a fixed rate, each with a fresh stamp, as the
camera driver would; ``segmentation`` (confidence masks, k = 8) and ``grasp_regions`` run as
separate processes (as ``ros2 launch`` runs them) or both in one process (``perception
bringup``, a component container's role). A monitor in this process records when each
stamp's ``segmentation/instance_labels`` and ``grasp/candidates`` arrive. Per rate and
layout: the latency p50/p99 from the image stamp to each stage, the delivered share (stamps
with grasp candidates over stamps published), and the peak rate: the highest rate tried whose
delivered share is at least 95 %.

Make the bag: ``python -m perception_nodes.eval.pipeline_bench --make-bag DIR``.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes import resources
from perception_nodes.eval.processes import NodeProcess, start_nodes, start_one_process
from perception_nodes.ros.bags import read_bag
from perception_nodes.ros.qos import qos_by_name

TOPICS = {"/camera/color/image_raw": Image, "/camera/depth/image_raw": Image,
          "/camera/color/camera_info": CameraInfo}
NODES = ["segmentation", "grasp_regions"]
# the configuration the target names: confidence masks, k = 8, no rate limit (the
# player sets the rate); everything else from config/perception.yaml
PARAMS = {"segmentation": {"mode": "confidence_mask", "num_samples": 8, "max_fps": 0.0,
                           "publish_overlay": False},
          "grasp_regions": {"max_fps": 0.0}}


def default_bag() -> Path:
    return resources.share_dir() / "test" / "data" / "pipeline_bag"


def make_pipeline_bag(path: Path | str, seeds: tuple[int, ...] = (11, 12, 13, 14),
                      width: int = 640, height: int = 480) -> Path:
    """A bag of one frame per seeded scene of the simulated cell, as a depth camera driver
    publishes it: rgb8 colour, 16UC1 depth in millimetres (0 invalid), camera info."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from std_msgs.msg import Header

    from perception_nodes.core.conventions import depth_m_to_mm
    from perception_nodes.ros.bags import TYPESTORE, msgtype_of
    from perception_nodes.ros.image_conversion import numpy_to_image
    from perception_nodes.ros.messages import camera_info_msg
    from perception_nodes.sim.cell import CellConfig, PickingCell

    path = Path(path)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {t: writer.add_connection(t, msgtype_of(c), typestore=TYPESTORE)
             for t, c in TOPICS.items()}
    for i, seed in enumerate(seeds):
        with PickingCell(CellConfig(width=width, height=height, min_items=10, max_items=24),
                         seed) as cell:
            frame = cell.render()
        ns = (i + 1) * 100_000_000
        header = Header(frame_id="camera_color_optical_frame")
        header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
        msgs = {"/camera/color/image_raw": numpy_to_image(frame.rgb, "rgb8", header),
                "/camera/depth/image_raw": numpy_to_image(depth_m_to_mm(frame.depth),
                                                          "16UC1", header),
                "/camera/color/camera_info": camera_info_msg(frame.intrinsics, header)}
        for topic, msg in msgs.items():
            writer.write(conns[topic], ns, serialize_message(msg))
    writer.close()
    return path


def load_frames(bag: Path | str) -> list[dict[str, object]]:
    """The bag's frames: ``[{topic: rclpy message}]`` grouped by header stamp, in order."""
    frames: dict[int, dict] = {}
    for topic, _, _, raw in read_bag(bag, list(TOPICS)):
        msg = deserialize_message(raw, TOPICS[topic])
        frames.setdefault(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, {})[
            topic] = msg
    complete = [frames[k] for k in sorted(frames) if len(frames[k]) == len(TOPICS)]
    if not complete:
        raise ValueError(f"{bag}: no frame with all of {sorted(TOPICS)}")
    return complete


class PipelineProbe:
    """Player and monitor: publishes frames at a rate with fresh stamps and records when each
    stamp's labels and candidates arrive (monotonic seconds)."""

    def __init__(self, context: Context, frames: list[dict[str, object]]) -> None:
        self.node = Node("pipeline_bench", context=context)
        qos = qos_by_name("reliable")
        self.frames = frames
        self.pubs = {t: self.node.create_publisher(c, t, qos) for t, c in TOPICS.items()}
        self.sent: dict[tuple[int, int], float] = {}
        self.labels: dict[tuple[int, int], float] = {}
        self.candidates: dict[tuple[int, int], float] = {}
        self.node.create_subscription(Image, "/segmentation/instance_labels",
                                      lambda m: self._got(self.labels, m), qos)
        self.node.create_subscription(PoseArray, "/grasp/candidates",
                                      lambda m: self._got(self.candidates, m), qos)
        self.health: dict[str, dict[str, str]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_health, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_health(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.health[status.hardware_id or status.name] = {
                kv.key: kv.value for kv in status.values}

    def node_latency(self) -> dict[str, str | None]:
        """Each node's own processing time p50 (ms, its /diagnostics): the callback, from
        the message in hand to the last publish."""
        return {n: self.health.get(n, {}).get("latency_p50_ms") for n in NODES}

    @staticmethod
    def _got(store: dict, msg) -> None:
        store.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), time.monotonic())

    def publish(self, index: int) -> tuple[int, int]:
        """Frame ``index`` (cycling through the bag) with a fresh stamp; the stamp."""
        stamp = self.node.get_clock().now().to_msg()
        key = (stamp.sec, stamp.nanosec)
        self.sent[key] = time.monotonic()
        for topic, msg in self.frames[index % len(self.frames)].items():
            msg.header.stamp = stamp
            self.pubs[topic].publish(msg)
        return key

    def wait_ready(self, timeout_s: float, procs: list[NodeProcess]) -> None:
        """Publish a frame every 0.5 s until candidates come back (models loaded, graph
        discovered). Raises RuntimeError with the nodes' output on failure."""
        end, i = time.monotonic() + timeout_s, 0
        while time.monotonic() < end:
            if any(not p.alive() for p in procs):
                break
            key = self.publish(i)
            i += 1
            time.sleep(0.5)
            if key in self.candidates:
                return
        raise RuntimeError("the pipeline never produced candidates:\n" + "\n".join(
            p.output[-1500:] for p in procs))

    def run(self, rate_hz: float, seconds: float, drain_s: float = 2.0) -> dict:
        """Publish at ``rate_hz`` for ``seconds``; latency and delivery of those frames."""
        period, start = 1.0 / rate_hz, time.monotonic()
        keys = []
        for i in range(int(round(rate_hz * seconds))):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            keys.append(self.publish(i))
        time.sleep(drain_s)
        return {**summarise(keys, self.sent, self.labels, self.candidates, rate_hz),
                "node_processing_p50_ms": self.node_latency()}

    def close(self) -> None:
        self._stop.set()
        self._spinner.join(timeout=5)
        self.node.destroy_node()


def _percentiles(values_s: list[float]) -> dict:
    ms = np.asarray(values_s) * 1e3
    if not ms.size:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def summarise(keys: list, sent: dict, labels: dict, candidates: dict, rate_hz: float) -> dict:
    """Per-stage latency from the image stamp's send time and the delivered shares."""
    seg = [labels[k] - sent[k] for k in keys if k in labels]
    end = [candidates[k] - sent[k] for k in keys if k in candidates]
    grasp = [candidates[k] - labels[k] for k in keys if k in candidates and k in labels]
    n = len(keys)
    return {"rate_hz": rate_hz, "published": n,
            "segmented_share": round(len(seg) / n, 3) if n else None,
            "delivered_share": round(len(end) / n, 3) if n else None,
            "camera_to_segmentation": _percentiles(seg),
            "segmentation_to_candidates": _percentiles(grasp),
            "camera_to_candidates": _percentiles(end)}


def bench_pipeline(rates: tuple[float, ...] = (10.0, 30.0),
                   peak_rates: tuple[float, ...] = (15.0, 20.0),
                   seconds: float = 10.0, layouts: tuple[str, ...] = ("separate", "one_process"),
                   bag: Path | str | None = None, params: dict | None = None) -> dict:
    """The pipeline at each rate in each layout; see the module docstring."""
    frames = load_frames(bag or default_bag())
    h, w = frames[0]["/camera/color/image_raw"].height, frames[0]["/camera/color/image_raw"].width
    params = params or PARAMS
    out: dict = {"image": f"{w}x{h}", "nodes": NODES, "params": params, "seconds": seconds}
    for layout in layouts:
        context = Context()
        context.init()
        probe = PipelineProbe(context, frames)
        if layout == "separate":
            procs = list(start_nodes(NODES, resources.default_config(), params=params).values())
        else:
            procs = [start_one_process(NODES, resources.default_config(), params=params)]
        try:
            probe.wait_ready(120.0, procs)
            runs = [probe.run(rate, seconds) for rate in sorted({*rates, *peak_rates})]
        finally:
            probe.close()
            codes = [p.stop() for p in procs]
            context.try_shutdown()
        ok = [r["rate_hz"] for r in runs if (r["delivered_share"] or 0) >= 0.95]
        out[layout] = {"runs": {f"{r['rate_hz']:g}Hz": r for r in runs},
                       "peak_rate_hz": max(ok) if ok else None,
                       "exit_codes": codes}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-bag", metavar="DIR", help="write the 640x480 pipeline bag")
    args = ap.parse_args(argv)
    if args.make_bag:
        print(make_pipeline_bag(args.make_bag))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
