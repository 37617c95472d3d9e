"""`perception eval bag`: replay a cell's recording through configurations of the stack, frame
by frame and deterministically, and compare them side by side.

Each frame of the bag (colour, depth and camera_info of one stamp) goes through each
configuration's segmentation (the node's core: ``ModeSegmenter`` with height above the floor
for RGB-H models, or ``GeometricSegmenter``) and grasp planner (``plan_grasps``). Scores:

- with ground truth in the bag (``sim/instance_labels``, or ``--labels-topic``): mAP,
  mAP@50, MR@HP and AR-IoG (``core.instance_metrics``, as the dataset evaluator);
- always: instances per frame and their stability between consecutive frames (mean best IoU
  of each instance with the previous frame's), agreement between configurations (mean best
  IoU), the share of frames with a grasp candidate, candidate quality and risk, latency;
- with recorded picks (``arm/pick_request`` and ``arm/pick_outcome``, or the ``sim/`` names
  of older recordings): the cell's success and double-pick rates, and per configuration the
  share of those picks where its top candidate lies on the item the cell picked.

Outputs: a JSON report, a markdown table, PNG plots, and an annotated bag: every recorded
message plus each configuration's ``eval/NAME/instance_labels``, ``eval/NAME/candidates``
and ``eval/NAME/candidate_info`` with the recorded stamps.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.confidence_masks import labels_to_masks
from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.core.grasp_regions import GraspParams, WorkspaceMask, plan_grasps
from perception_nodes.core.instance_metrics import InstanceEvaluator, best_iou
from perception_nodes.ros.bags import TYPESTORE, deserialize, read_bag
from perception_nodes.ros.grasp_messages import parse_pairs
from perception_nodes.ros.image_conversion import image_to_depth_m, image_to_numpy, image_to_rgb
from perception_nodes.ros.messages import intrinsics_from_camera_info, matrix_from_pose_msg

GRASP_KEYS = {f for f in GraspParams.__dataclass_fields__}
SEGMENT_KEYS = {"num_samples", "confidence_p", "score_threshold", "seed", "min_height_m"}


@dataclass
class BagConfig:
    """One configuration: ``name``, segmentation ``mode``, ``model`` (manifest name or ONNX
    path; the mode's shipped model when empty) and parameters (segmentation:
    ``SEGMENT_KEYS``; planner: ``GraspParams`` fields; ``floor_plane`` and
    ``workspace_polygon`` as the nodes take them)."""

    name: str
    mode: str
    model: str = ""
    params: dict = field(default_factory=dict)


def parse_configs(text: str) -> list[BagConfig]:
    """``"NAME=mode:M,model:X,param:=value;NAME2=..."`` -> configurations (values of ``:=``
    parsed as YAML). ValueError on a malformed entry, an unknown parameter or a repeated
    name."""
    out: list[BagConfig] = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        name, eq, body = entry.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"configuration {entry!r} is not NAME=mode:...")
        cfg = BagConfig(name.strip(), "")
        for item in filter(None, (i.strip() for i in body.split(","))):
            if ":=" in item:
                key, value = item.split(":=", 1)
                if key not in GRASP_KEYS | SEGMENT_KEYS | {"floor_plane", "workspace_polygon"}:
                    raise ValueError(f"{cfg.name}: unknown parameter {key!r}")
                cfg.params[key] = yaml.safe_load(value)
            elif item.startswith("mode:"):
                cfg.mode = item[5:]
            elif item.startswith("model:"):
                cfg.model = item[6:]
            else:
                raise ValueError(f"{cfg.name}: {item!r} is neither mode:, model: nor key:=value")
        if not cfg.mode:
            raise ValueError(f"{cfg.name}: no mode:")
        if cfg.name in [c.name for c in out]:
            raise ValueError(f"configuration name {cfg.name!r} repeats")
        out.append(cfg)
    if not out:
        raise ValueError("no configuration given")
    return out


@dataclass
class BagFrame:
    """One camera frame of the bag: stamp (ns), ``rgb (H, W, 3) uint8``, ``depth (H, W)
    float32`` m, intrinsics, ground-truth labels (or None) and the recorded messages'
    header (for the annotations)."""

    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray | None
    intrinsics: PinholeIntrinsics
    labels: np.ndarray | None
    header: object


@dataclass
class BagTopics:
    color: str = "/camera/color/image_raw"
    depth: str = "/camera/depth/image_raw"
    info: str = "/camera/color/camera_info"
    labels: str = "/sim/instance_labels"
    pick_requests: tuple[str, ...] = ("/arm/pick_request", "/sim/pick_request")
    pick_outcomes: tuple[str, ...] = ("/arm/pick_outcome", "/sim/pick_outcome")


def _stamp(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def read_frames(bag: Path | str, topics: BagTopics) -> tuple[list[BagFrame], list, list]:
    """The bag's camera frames (every stamp with colour and camera_info; depth and labels
    when recorded), its pick requests ``(stamp_ns, 4x4 pose in the camera frame)`` and pick
    outcomes ``(stamp_ns, items_lifted, double_pick)``."""
    parts: dict[int, dict] = {}
    requests, outcomes = [], []
    wanted = [topics.color, topics.depth, topics.info, topics.labels,
              *topics.pick_requests, *topics.pick_outcomes]
    for topic, msgtype, _, raw in read_bag(bag, wanted):
        msg = deserialize(raw, msgtype)
        if topic in topics.pick_requests:
            requests.append((_stamp(msg), matrix_from_pose_msg(msg.pose)))
        elif topic in topics.pick_outcomes:
            values = {kv.key: kv.value for s in msg.status for kv in s.values}
            outcomes.append((_stamp(msg), int(values.get("items_lifted", 0)),
                             values.get("double_pick", "false") == "true"))
        else:
            key = {topics.color: "color", topics.depth: "depth", topics.info: "info",
                   topics.labels: "labels"}[topic]
            parts.setdefault(_stamp(msg), {})[key] = msg
    frames = []
    for stamp in sorted(parts):
        p = parts[stamp]
        if "color" not in p or "info" not in p:
            continue
        rgb = image_to_rgb(p["color"])
        frames.append(BagFrame(
            stamp, rgb, image_to_depth_m(p["depth"], rgb.shape) if "depth" in p else None,
            intrinsics_from_camera_info(p["info"], rgb.shape),
            image_to_numpy(p["labels"]) if "labels" in p else None, p["color"].header))
    return frames, requests, outcomes


class ConfigRunner:
    """One configuration's segmentation and planner, as the nodes run them."""

    def __init__(self, cfg: BagConfig, models_dir: str = "", providers: str = "cpu") -> None:
        from perception_nodes.core.geometric import GeometricParams
        from perception_nodes.inference.geometric import GeometricSegmenter
        from perception_nodes.inference.onnx_model import resolve_model
        from perception_nodes.inference.segmenter import (
            DEFAULT_MODELS,
            ModeSegmenter,
            model_kind,
        )

        p = cfg.params
        self.cfg = cfg
        self.floor = parse_plane(p["floor_plane"]) if p.get("floor_plane") else None
        self.workspace = WorkspaceMask(parse_pairs(p.get("workspace_polygon", "")))
        self.seed = int(p.get("seed", 0))
        self.grasp = GraspParams(**{k: v for k, v in p.items() if k in GRASP_KEYS})
        if cfg.mode == "geometric":
            gp = GeometricParams()
            if "min_height_m" in p:
                gp = GeometricParams(min_height_m=float(p["min_height_m"]))
            self.segmenter = GeometricSegmenter(self.floor, self.workspace, gp, self.seed)
            self.model = None
        else:
            name = cfg.model or DEFAULT_MODELS[model_kind(cfg.mode)]
            path = Path(name) if name.endswith(".onnx") else resolve_model(name, models_dir)
            self.model = ModeSegmenter(cfg.mode, path, providers, self.seed, 1,
                                       int(p.get("num_samples", 8)),
                                       float(p.get("confidence_p", 0.9)),
                                       float(p.get("score_threshold", 0.3)))
            self.segmenter = None

    def __call__(self, frame: BagFrame):
        """``(Segmentation, GraspPlan or None, seconds)`` for one frame."""
        from perception_nodes.inference.geometric import height_for_frame

        start = time.perf_counter()
        if self.model is None:
            out = self.segmenter(frame.depth, frame.intrinsics)
        elif self.model.needs_height:
            out = self.model(frame.rgb, height_for_frame(frame.depth, frame.intrinsics,
                                                         self.floor, self.seed))
        else:
            out = self.model(frame.rgb)
        plan = None
        if frame.depth is not None:
            plan = plan_grasps(out.labels, frame.depth, frame.intrinsics, params=self.grasp,
                               confidence=out.confidence, sample_labels=out.samples,
                               ignore=self.workspace(out.labels.shape),
                               floor_plane=self.floor)
        return out, plan, time.perf_counter() - start

    def close(self) -> None:
        if self.model is not None:
            self.model.close()


def _mean_best_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over ``a``'s instances of the best IoU with ``b``'s (NaN when ``a`` has none)."""
    ma, mb = labels_to_masks(a), labels_to_masks(b)
    if not len(ma):
        return float("nan")
    if not len(mb):
        return 0.0
    return float(best_iou(ma, mb).mean())


def _summary(values: list[float]) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if not v.size:
        return {"n": 0}
    return {"n": int(v.size), "mean": round(float(v.mean()), 4),
            "p10": round(float(np.percentile(v, 10)), 4),
            "p50": round(float(np.percentile(v, 50)), 4),
            "p90": round(float(np.percentile(v, 90)), 4)}


def evaluate_bag(bag: Path | str, configs: list[BagConfig], topics: BagTopics | None = None,
                 models_dir: str = "", annotated: Path | str | None = None,
                 progress: bool = True) -> dict:
    """Run every configuration over every frame; the report (and the annotated bag)."""
    topics = topics or BagTopics()
    t0 = time.perf_counter()
    frames, requests, outcomes = read_frames(bag, topics)
    read_s = time.perf_counter() - t0
    if not frames:
        raise ValueError(f"{bag}: no frame with both {topics.color} and {topics.info}")
    runners = {c.name: ConfigRunner(c, models_dir) for c in configs}
    per: dict[str, dict] = {c.name: {"latency_s": [], "instances": [], "stability": [],
                                     "with_candidate": [], "quality": [], "risk": [],
                                     "labels": [], "top": []} for c in configs}
    evaluators = {c.name: InstanceEvaluator() for c in configs}
    has_truth = any(f.labels is not None for f in frames)
    annotations: list[tuple[str, object, int, object]] = []
    compute_s = 0.0
    try:
        for i, frame in enumerate(frames):
            for name, runner in runners.items():
                out, plan, seconds = runner(frame)
                compute_s += seconds
                rec = per[name]
                rec["latency_s"].append(seconds)
                rec["instances"].append(int(len(out.scores)))
                if rec["labels"]:
                    rec["stability"].append(_mean_best_iou(out.labels, rec["labels"][-1]))
                rec["labels"].append(out.labels)
                cands = plan.candidates if plan is not None else []
                rec["with_candidate"].append(bool(cands))
                rec["quality"] += [c.quality for c in cands]
                rec["risk"] += [c.risk for c in cands]
                rec["top"].append(cands[0] if cands else None)
                if frame.labels is not None:
                    masks = labels_to_masks(out.labels)
                    scores = out.scores[:len(masks)] if len(out.scores) >= len(masks) else \
                        np.ones(len(masks))
                    evaluators[name].add(masks, scores, labels_to_masks(frame.labels))
                if annotated is not None:
                    annotations.append((name, out, frame.stamp_ns, (frame.header, plan)))
            if progress and (i + 1) % max(1, len(frames) // 10) == 0:
                print(f"eval bag: frame {i + 1}/{len(frames)}", file=sys.stderr, flush=True)
    finally:
        for runner in runners.values():
            runner.close()
    total_s = time.perf_counter() - t0
    report = {"bag": str(bag), "frames": len(frames), "ground_truth": has_truth,
              "configs": {}, "timing": {"read_decode_s": round(read_s, 3),
                                        "compute_s": round(compute_s, 3),
                                        "total_s": round(total_s, 3)}}
    for c in configs:
        rec = per[c.name]
        lat = np.asarray(rec["latency_s"]) * 1e3
        entry = {"mode": c.mode, "model": c.model, "params": c.params,
                 "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                                "p99": round(float(np.percentile(lat, 99)), 2)},
                 "instances_per_frame": _summary(rec["instances"]),
                 "stability_iou": _summary(rec["stability"]),
                 "frames_with_candidate": round(float(np.mean(rec["with_candidate"])), 4),
                 "candidate_quality": _summary(rec["quality"]),
                 "candidate_risk": _summary(rec["risk"])}
        if has_truth:
            ev = evaluators[c.name]
            entry.update(mAP=round(100 * ev.mean_ap(), 2), mAP50=round(100 * ev.ap_at(0.5), 2),
                         MR_at_HP=round(100 * ev.mr_at_hp(), 2),
                         AR_IoG=round(100 * ev.ar_iog(), 2))
        entry["same_item_as_cell"] = _same_item(frames, rec, requests)
        report["configs"][c.name] = entry
    report["agreement_iou"] = {
        f"{a.name}~{b.name}": round(float(np.nanmean([
            _mean_best_iou(la, lb) for la, lb in zip(per[a.name]["labels"],
                                                     per[b.name]["labels"], strict=True)])), 4)
        for a in configs for b in configs if a.name != b.name}
    report["per_frame"] = {c.name: {
        "latency_ms": [round(v * 1e3, 2) for v in per[c.name]["latency_s"]],
        "instances": per[c.name]["instances"],
        "candidates": [int(t is not None) for t in per[c.name]["top"]]} for c in configs}
    report["cell_picks"] = {"picks": len(outcomes),
                            "success": sum(1 for _, n, _ in outcomes if n == 1),
                            "double": sum(1 for _, n, d in outcomes if n > 1 or d),
                            "empty": sum(1 for _, n, _ in outcomes if n == 0)}
    if annotated is not None:
        write_annotated_bag(bag, annotated, annotations)
        report["annotated_bag"] = str(annotated)
    return report


def _same_item(frames: list[BagFrame], rec: dict, requests: list) -> dict:
    """Of the recorded picks, how often the configuration's top candidate (on the newest
    frame at or before the request) lies on the same instance, in its own labels, as the
    point the cell picked."""
    same = total = 0
    stamps = [f.stamp_ns for f in frames]
    for stamp, pose in requests:
        i = int(np.searchsorted(stamps, stamp, side="right")) - 1
        if i < 0:
            continue
        frame, labels, top = frames[i], rec["labels"][i], rec["top"][i]
        uv = np.rint(frame.intrinsics.project(pose[:3, 3][None])[0]).astype(int)
        h, w = labels.shape
        if not (0 <= uv[0] < w and 0 <= uv[1] < h):
            continue
        total += 1
        picked = int(labels[uv[1], uv[0]])
        same += int(top is not None and picked > 0 and top.instance == picked)
    return {"picks": total, "same_item": same}


def write_annotated_bag(source: Path | str, out: Path | str, annotations: list) -> None:
    """The recorded messages plus each configuration's outputs under ``eval/NAME/...`` with
    the recorded stamps (MCAP)."""
    from geometry_msgs.msg import PoseArray
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    from perception_nodes.core.grasp_regions import candidate_table
    from perception_nodes.ros.image_conversion import numpy_to_image
    from perception_nodes.ros.messages import pose_msg

    out = Path(out)
    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns: dict[str, object] = {}

    def conn(topic: str, msgtype: str):
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        return conns[topic]

    try:
        for topic, msgtype, t, raw in read_bag(source):
            writer.write(conn(topic, msgtype), t, raw)
        for name, seg, stamp_ns, (header, plan) in annotations:
            rheader = numpy_to_image(np.zeros((1, 1), np.uint8), "mono8").header
            rheader.stamp.sec, rheader.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            rheader.frame_id = header.frame_id
            labels = numpy_to_image(seg.labels.astype(np.uint16), "mono16", rheader)
            writer.write(conn(f"/eval/{name}/instance_labels", "sensor_msgs/msg/Image"),
                         stamp_ns, serialize_message(labels))
            cands = plan.candidates if plan is not None else []
            poses = PoseArray(header=rheader, poses=[pose_msg(c.pose) for c in cands])
            writer.write(conn(f"/eval/{name}/candidates", "geometry_msgs/msg/PoseArray"),
                         stamp_ns, serialize_message(poses))
            info = numpy_to_image(candidate_table(cands, seg.scores), "32FC1", rheader)
            writer.write(conn(f"/eval/{name}/candidate_info", "sensor_msgs/msg/Image"),
                         stamp_ns, serialize_message(info))
    finally:
        writer.close()


def markdown(report: dict) -> str:
    """A short table of the report."""
    truth = report["ground_truth"]
    head = "| config | mode | " + ("mAP | mAP@50 | MR@HP | AR-IoG | " if truth else "") + \
        "instances/frame | stability IoU | frames with candidate | risk p50 | " \
        "same item as cell | latency p50 ms |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, c in report["configs"].items():
        row = [name, c["mode"]]
        if truth:
            row += [f"{c['mAP']:.1f}", f"{c['mAP50']:.1f}", f"{c['MR_at_HP']:.1f}",
                    f"{c['AR_IoG']:.1f}"]
        same = c["same_item_as_cell"]
        row += [f"{c['instances_per_frame'].get('mean', 0):.1f}",
                f"{c['stability_iou'].get('mean', float('nan')):.2f}",
                f"{c['frames_with_candidate']:.0%}",
                f"{c['candidate_risk'].get('p50', float('nan')):.2f}",
                f"{same['same_item']}/{same['picks']}", f"{c['latency_ms']['p50']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Per-frame latency and instance counts, and metric bars, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, rec in report["per_frame"].items():
        axes[0].plot(np.asarray(rec["latency_ms"]), label=name)
        axes[1].plot(rec["instances"], label=name)
    axes[0].set(title="latency per frame", xlabel="frame", ylabel="ms")
    axes[1].set(title="instances per frame", xlabel="frame")
    names = list(report["configs"])
    key = "mAP" if report["ground_truth"] else "frames_with_candidate"
    axes[2].bar(names, [report["configs"][n][key] for n in names])
    axes[2].set(title=key)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(report: dict, out_dir: Path) -> None:
    """``report.json``, ``table.md`` and ``plots.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "table.md").write_text(markdown(report))
    plot(report, out_dir / "plots.png")


def write_sim_bag(path: Path | str, frames: int = 1000, width: int = 640, height: int = 480,
                  distinct: int = 8, seed: int = 0) -> Path:
    """A bag of ``frames`` camera frames of the simulated cell (rgb8, 16UC1 depth,
    camera_info at 5 Hz stamps), cycling ``distinct`` rendered scenes: for timing the
    evaluation on a long recording without rendering every frame."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import CameraInfo as CameraInfoMsg
    from sensor_msgs.msg import Image as ImageMsg

    from perception_nodes.ros.image_conversion import numpy_to_image
    from perception_nodes.ros.messages import camera_info_msg
    from perception_nodes.sim.cell import CellConfig, PickingCell

    renders = []
    with PickingCell(CellConfig(width=width, height=height, style_domain="train"), seed) as cell:
        for i in range(distinct):
            cell.reset(seed + i)
            f = cell.render()
            renders.append((f.rgb, np.nan_to_num(f.depth * 1000).round().astype(np.uint16),
                            f.intrinsics))
    path = Path(path)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    topics = BagTopics()
    conns = {t: writer.add_connection(t, m, typestore=TYPESTORE) for t, m in (
        (topics.color, "sensor_msgs/msg/Image"), (topics.depth, "sensor_msgs/msg/Image"),
        (topics.info, "sensor_msgs/msg/CameraInfo"))}
    try:
        for i in range(frames):
            rgb, depth_mm, intrinsics = renders[i % distinct]
            stamp_ns = 1_000_000_000 + i * 200_000_000
            img: ImageMsg = numpy_to_image(rgb, "rgb8")
            img.header.stamp.sec, img.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            img.header.frame_id = "camera_color_optical_frame"
            info: CameraInfoMsg = camera_info_msg(intrinsics, img.header)
            for topic, msg in ((topics.color, img), (topics.info, info),
                               (topics.depth, numpy_to_image(depth_mm, "16UC1", img.header))):
                writer.write(conns[topic], stamp_ns, serialize_message(msg))
    finally:
        writer.close()
    return path


def bench_bag_eval(frames: int = 1000, configs: str = "geometric=mode:geometric;"
                   "baseline=mode:baseline") -> dict:
    """Evaluate two configurations on a ``frames``-frame 640x480 bag: total time against the
    configurations' own compute (the target: under 2x)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="bag_eval_bench_"))
    try:
        bag = write_sim_bag(root / "bag", frames)
        report = evaluate_bag(bag, parse_configs(configs), progress=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    t = report["timing"]
    return {"frames": report["frames"], "size": "640x480", "configs": configs, **t,
            "total_over_compute": round(t["total_s"] / t["compute_s"], 3),
            "latency_p50_ms": {n: c["latency_ms"]["p50"]
                               for n, c in report["configs"].items()}}
