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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.confidence_masks import labels_to_masks
from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.core.grasp_regions import GraspParams, WorkspaceMask, plan_grasps
from perception_nodes.core.instance_metrics import InstanceEvaluator, mean_best_iou
from perception_nodes.inference.geometric import segment_rgbd
from perception_nodes.ros.bags import BagWriter, bag_connections, deserialize, read_bag
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


def read_picks(bag: Path | str, topics: BagTopics) -> tuple[list, list]:
    """The recorded pick requests ``(stamp_ns, 4x4 pose in the camera frame)`` and outcomes
    ``(stamp_ns, items_lifted, double_pick)``, in time order."""
    requests, outcomes = [], []
    for topic, msgtype, _, raw in read_bag(bag, [*topics.pick_requests,
                                                 *topics.pick_outcomes]):
        msg = deserialize(raw, msgtype)
        if topic in topics.pick_requests:
            requests.append((_stamp(msg), matrix_from_pose_msg(msg.pose)))
        else:
            values = {kv.key: kv.value for s in msg.status for kv in s.values}
            outcomes.append((_stamp(msg), int(values.get("items_lifted", 0)),
                             values.get("double_pick", "false") == "true"))
    return sorted(requests, key=lambda r: r[0]), outcomes


def iter_frames(bag: Path | str, topics: BagTopics, window: int = 30) -> Iterator[BagFrame]:
    """The bag's camera frames in stamp order as it is read (memory: ``window`` stamps): a
    frame is a stamp with colour and camera_info, plus depth and labels when the bag records
    those topics; a stamp still missing a part when ``window`` newer ones arrived goes out as
    it is (when it has colour and camera_info) or is dropped."""
    present = {topic for topic, *_ in bag_connections(bag)}
    keys = {topics.color: "color", topics.info: "info"}
    keys.update({t: k for t, k in ((topics.depth, "depth"), (topics.labels, "labels"))
                 if t in present})
    pending: dict[int, dict] = {}

    def frame(parts: dict) -> BagFrame:
        rgb = image_to_rgb(parts["color"])
        depth = parts.get("depth")
        return BagFrame(_stamp(parts["color"]), rgb,
                        image_to_depth_m(depth, rgb.shape) if depth is not None else None,
                        intrinsics_from_camera_info(parts["info"], rgb.shape),
                        image_to_numpy(parts["labels"]) if "labels" in parts else None,
                        parts["color"].header)

    for topic, msgtype, _, raw in read_bag(bag, list(keys)):
        msg = deserialize(raw, msgtype)
        stamp = _stamp(msg)
        pending.setdefault(stamp, {})[keys[topic]] = msg
        complete = len(pending[stamp]) == len(keys)
        if complete or len(pending) > window:
            limit = stamp if complete else sorted(pending)[-window]
            for old in sorted(k for k in pending if k <= limit):
                parts = pending.pop(old)
                if "color" in parts and "info" in parts:
                    yield frame(parts)
    for old in sorted(pending):
        parts = pending[old]
        if "color" in parts and "info" in parts:
            yield frame(parts)


def read_frames(bag: Path | str, topics: BagTopics) -> tuple[list[BagFrame], list, list]:
    """Every frame (in memory: for tests and short bags), the pick requests and outcomes."""
    return list(iter_frames(bag, topics)), *read_picks(bag, topics)


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
        start = time.perf_counter()
        out = segment_rgbd(self.model or self.segmenter, frame.rgb, frame.depth,
                           frame.intrinsics, self.floor, self.seed)
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


def _summary(values: list[float]) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if not v.size:
        return {"n": 0}
    return {"n": int(v.size), "mean": round(float(v.mean()), 4),
            "p10": round(float(np.percentile(v, 10)), 4),
            "p50": round(float(np.percentile(v, 50)), 4),
            "p90": round(float(np.percentile(v, 90)), 4)}


@dataclass
class _Record:
    """What one configuration produced so far (series, and the previous frame's labels)."""

    latency_s: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    stability: list = field(default_factory=list)
    with_candidate: list = field(default_factory=list)
    quality: list = field(default_factory=list)
    risk: list = field(default_factory=list)
    previous: np.ndarray | None = None
    picks: int = 0
    same_item: int = 0
    evaluator: InstanceEvaluator = field(default_factory=InstanceEvaluator)


def evaluate_bag(bag: Path | str, configs: list[BagConfig], topics: BagTopics | None = None,
                 models_dir: str = "", annotated: Path | str | None = None,
                 progress: bool = True) -> dict:
    """Run every configuration over every frame, streaming the bag; the report (and the
    annotated bag)."""
    topics = topics or BagTopics()
    t0 = time.perf_counter()
    requests, outcomes = read_picks(bag, topics)
    runners = {c.name: ConfigRunner(c, models_dir) for c in configs}
    recs = {c.name: _Record() for c in configs}
    agreement: dict[str, list] = {f"{a.name}~{b.name}": [] for a in configs for b in configs
                                  if a.name != b.name}
    writer = AnnotatedBag(bag, annotated) if annotated is not None else None
    compute_s, frames, has_truth, next_request = 0.0, 0, False, 0
    last: tuple | None = None  # the previous frame and each configuration's outputs
    try:
        for frame in iter_frames(bag, topics):
            # the picks recorded before this frame were decided on the previous one
            while next_request < len(requests) and requests[next_request][0] < frame.stamp_ns:
                _score_pick(last, requests[next_request][1], recs)
                next_request += 1
            outputs = {}
            for name, runner in runners.items():
                out, plan, seconds = runner(frame)
                compute_s += seconds
                _record(recs[name], frame, out, plan, seconds)
                outputs[name] = (out, plan)
                if writer is not None:
                    writer.add(name, frame, out, plan)
            for key in agreement:
                a, b = key.split("~")
                agreement[key].append(mean_best_iou(outputs[a][0].labels,
                                                     outputs[b][0].labels))
            has_truth |= frame.labels is not None
            last = (frame, outputs)
            frames += 1
            if progress and frames % 50 == 0:
                print(f"eval bag: {frames} frames", file=sys.stderr, flush=True)
        for _, pose in requests[next_request:]:
            _score_pick(last, pose, recs)
    finally:
        for runner in runners.values():
            runner.close()
        if writer is not None:
            writer.close()
    if not frames:
        raise ValueError(f"{bag}: no frame with both {topics.color} and {topics.info}")
    total_s = time.perf_counter() - t0
    report = {"bag": str(bag), "frames": frames, "ground_truth": has_truth, "configs": {},
              "timing": {"compute_s": round(compute_s, 3), "total_s": round(total_s, 3),
                         "overhead_s": round(total_s - compute_s, 3)}}
    for c in configs:
        report["configs"][c.name] = _config_report(c, recs[c.name], has_truth)
    report["agreement_iou"] = {k: round(float(np.nanmean(v)), 4) if v else None
                               for k, v in agreement.items()}
    report["per_frame"] = {c.name: {"latency_ms": [round(v * 1e3, 2)
                                                   for v in recs[c.name].latency_s],
                                    "instances": recs[c.name].instances,
                                    "candidates": [int(x) for x in
                                                   recs[c.name].with_candidate]}
                           for c in configs}
    report["cell_picks"] = {"picks": len(outcomes),
                            "success": sum(1 for _, n, _ in outcomes if n == 1),
                            "double": sum(1 for _, n, d in outcomes if n > 1 or d),
                            "empty": sum(1 for _, n, _ in outcomes if n == 0)}
    if annotated is not None:
        report["annotated_bag"] = str(annotated)
    return report


def _record(rec: _Record, frame: BagFrame, out, plan, seconds: float) -> None:
    rec.latency_s.append(seconds)
    rec.instances.append(int(len(out.scores)))
    if rec.previous is not None:
        rec.stability.append(mean_best_iou(out.labels, rec.previous))
    rec.previous = out.labels
    cands = plan.candidates if plan is not None else []
    rec.with_candidate.append(bool(cands))
    rec.quality += [c.quality for c in cands]
    rec.risk += [c.risk for c in cands]
    if frame.labels is not None:
        masks = labels_to_masks(out.labels)
        scores = out.scores[:len(masks)] if len(out.scores) >= len(masks) else \
            np.ones(len(masks))
        rec.evaluator.add(masks, scores, labels_to_masks(frame.labels))


def _score_pick(last: tuple | None, pose: np.ndarray, recs: dict[str, _Record]) -> None:
    """Whether each configuration's top candidate on the frame a recorded pick was decided
    on lies on the item the cell picked (by the configuration's own labels)."""
    if last is None:
        return
    frame, outputs = last
    uv = np.rint(frame.intrinsics.project(pose[:3, 3][None])[0]).astype(int)
    for name, (out, plan) in outputs.items():
        h, w = out.labels.shape
        if not (0 <= uv[0] < w and 0 <= uv[1] < h):
            continue
        rec = recs[name]
        rec.picks += 1
        picked = int(out.labels[uv[1], uv[0]])
        top = plan.candidates[0] if plan is not None and plan.candidates else None
        rec.same_item += int(top is not None and picked > 0 and top.instance == picked)


def _config_report(c: BagConfig, rec: _Record, has_truth: bool) -> dict:
    lat = np.asarray(rec.latency_s) * 1e3
    entry = {"mode": c.mode, "model": c.model, "params": c.params,
             "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                            "p99": round(float(np.percentile(lat, 99)), 2)},
             "instances_per_frame": _summary(rec.instances),
             "stability_iou": _summary(rec.stability),
             "frames_with_candidate": round(float(np.mean(rec.with_candidate)), 4),
             "candidate_quality": _summary(rec.quality),
             "candidate_risk": _summary(rec.risk),
             "same_item_as_cell": {"picks": rec.picks, "same_item": rec.same_item}}
    if has_truth:
        ev = rec.evaluator
        entry.update(mAP=round(100 * ev.mean_ap(), 2), mAP50=round(100 * ev.ap_at(0.5), 2),
                     MR_at_HP=round(100 * ev.mr_at_hp(), 2), AR_IoG=round(100 * ev.ar_iog(), 2))
    return entry


class AnnotatedBag(BagWriter):
    """The recorded messages (copied first) plus each configuration's outputs under
    ``eval/NAME/...`` with the recorded stamps, written as frames are evaluated (MCAP)."""

    def __init__(self, source: Path | str, out: Path | str) -> None:
        super().__init__(out)
        for topic, msgtype, t, raw in read_bag(source):
            self.write(topic, raw, t, msgtype)

    def add(self, name: str, frame: BagFrame, seg, plan) -> None:
        from geometry_msgs.msg import PoseArray

        from perception_nodes.core.grasp_regions import candidate_table
        from perception_nodes.ros.image_conversion import numpy_to_image
        from perception_nodes.ros.messages import pose_msg

        header = numpy_to_image(np.zeros((1, 1), np.uint8), "mono8").header
        header.stamp.sec, header.stamp.nanosec = divmod(frame.stamp_ns, 1_000_000_000)
        header.frame_id = frame.header.frame_id
        cands = plan.candidates if plan is not None else []
        self.write(f"/eval/{name}/instance_labels",
                   numpy_to_image(seg.labels.astype(np.uint16), "mono16", header),
                   frame.stamp_ns)
        self.write(f"/eval/{name}/candidates",
                   PoseArray(header=header, poses=[pose_msg(c.pose) for c in cands]),
                   frame.stamp_ns)
        self.write(f"/eval/{name}/candidate_info",
                   numpy_to_image(candidate_table(cands, seg.scores), "32FC1", header),
                   frame.stamp_ns)


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
    topics = BagTopics()
    with BagWriter(path) as writer:
        for i in range(frames):
            rgb, depth_mm, intrinsics = renders[i % distinct]
            stamp_ns = 1_000_000_000 + i * 200_000_000
            img = numpy_to_image(rgb, "rgb8")
            img.header.stamp.sec, img.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            img.header.frame_id = "camera_color_optical_frame"
            writer.write(topics.color, img, stamp_ns)
            writer.write(topics.info, camera_info_msg(intrinsics, img.header), stamp_ns)
            writer.write(topics.depth, numpy_to_image(depth_mm, "16UC1", img.header), stamp_ns)
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
