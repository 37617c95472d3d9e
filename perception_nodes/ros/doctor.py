"""`perception doctor`: why a node sits silent. For the running perception nodes (in one
namespace), every input each subscribes to: is there a publisher, are their QoS compatible,
what arrives (rate, encoding, frame, size), does the calibration fit the camera; and each
node's own health from /diagnostics. Every problem is one line with its fix.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from perception_nodes.registry import NODES
from perception_nodes.ros.bags import message_class
from perception_nodes.ros.calibration import CalibrationCheck, parse_calibration_camera
from perception_nodes.ros.diagnostics import LEVEL_NAMES, level_rank
from perception_nodes.ros.image_conversion import COLOUR_ENCODINGS
from perception_nodes.ros.messages import intrinsics_from_camera_info

DEPTH_ENCODINGS = ("32FC1", "16UC1")
# the encodings the stack's own camera topics carry (docs/nodes.md, topic contract)
CONTRACT_ENCODINGS = {"camera/color/image_raw": ("rgb8",),
                      "camera/depth/image_raw": DEPTH_ENCODINGS,
                      "camera/depth_mono/image_raw": ("32FC1",)}


@dataclass
class InputReport:
    """One input of one node, as seen on the graph."""

    node: str
    topic: str
    msg_type: str
    publishers: list[str] = field(default_factory=list)
    qos_ok: bool = True
    rate_hz: float = 0.0
    encoding: str = ""
    frame_id: str = ""
    size: str = ""
    problems: list[str] = field(default_factory=list)


def _expected_encodings(node: str, topic: str, relative: str) -> tuple[str, ...] | None:
    if node == "camera_ingest":  # a driver's topics: what camera_ingest converts
        return DEPTH_ENCODINGS if "depth" in topic else COLOUR_ENCODINGS
    return CONTRACT_ENCODINGS.get(relative)


class Doctor:
    """Inspects the graph from a node of its own in ``context`` (spun here)."""

    def __init__(self, context=None, namespace: str = "/") -> None:
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else "/"
        self.node = Node("perception_doctor", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.node.destroy_node()

    def spin(self, seconds: float, done=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (done is not None and done()):
            self.executor.spin_once(timeout_sec=0.05)

    def nodes(self) -> list[str]:
        """The perception nodes running in the namespace."""
        return sorted(n for n, ns in self.node.get_node_names_and_namespaces()
                      if ns == self.namespace and n in NODES)

    def _relative(self, topic: str) -> str:
        prefix = self.namespace.rstrip("/") + "/"
        return topic[len(prefix):] if topic.startswith(prefix) else topic.lstrip("/")

    def inputs(self, name: str) -> list[InputReport]:
        """Each topic ``name`` subscribes to, its publishers and QoS compatibility."""
        out = []
        for topic, types in self.node.get_subscriber_names_and_types_by_node(
                name, self.namespace):
            if topic in ("/parameter_events", "/diagnostics"):
                continue
            report = InputReport(name, topic, types[0])
            pubs = self.node.get_publishers_info_by_topic(topic)
            subs = [s for s in self.node.get_subscriptions_info_by_topic(topic)
                    if s.node_name == name]
            report.publishers = sorted({f"{p.node_namespace.rstrip('/')}/{p.node_name}"
                                        for p in pubs})
            if not pubs:
                report.problems.append(self._no_publisher(name, topic, types[0]))
            for sub in subs:
                for pub in pubs:
                    problem = _qos_mismatch(sub.qos_profile, pub.qos_profile)
                    if problem:
                        report.qos_ok = False
                        report.problems.append(
                            f"{name} subscribes {topic} {problem} of "
                            f"{pub.node_name}: nothing arrives. Fix: {name} "
                            f"qos_subscribe:=sensor_data (or make the publisher reliable)")
                        break
            out.append(report)
        return out

    def _no_publisher(self, name: str, topic: str, msg_type: str) -> str:
        published = [t for t, ts in self.node.get_topic_names_and_types()
                     if msg_type in ts and t != topic
                     and self.node.get_publishers_info_by_topic(t)]
        near = difflib.get_close_matches(topic, published, n=3, cutoff=0.6)
        hint = f" Published topics of that type with a near name: {', '.join(near)}." \
            if near else ""
        return (f"{name} needs {topic} ({msg_type}): nobody publishes it. Fix: remap the "
                f"publisher's topic to it, or set the node's topic parameter.{hint}")

    def sample(self, reports: list[InputReport], seconds: float) -> dict[str, list]:
        """Receive each published input for ``seconds``: rate, encoding, frame, size."""
        got: dict[str, list] = {}
        subs = []
        for topic in sorted({r.topic for r in reports if r.publishers}):
            pubs = self.node.get_publishers_info_by_topic(topic)
            reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                           for p in pubs)
            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT)
            got[topic] = []
            subs.append(self.node.create_subscription(
                message_class(reports[[r.topic for r in reports].index(topic)].msg_type),
                topic, lambda m, t=topic: got[t].append((time.monotonic(), m)), qos))
        self.spin(seconds)
        for sub in subs:
            self.node.destroy_subscription(sub)
        for report in reports:
            msgs = got.get(report.topic, [])
            if len(msgs) >= 2:
                report.rate_hz = (len(msgs) - 1) / max(msgs[-1][0] - msgs[0][0], 1e-6)
            if not msgs:
                if report.publishers:
                    report.problems.append(
                        f"{report.topic} has publishers ({', '.join(report.publishers)}) but "
                        f"nothing arrived in {seconds:.0f} s. Fix: check the camera/driver "
                        "is streaming (and the QoS above)")
                continue
            msg = msgs[-1][1]
            header = getattr(msg, "header", None)
            report.frame_id = header.frame_id if header is not None else ""
            if hasattr(msg, "encoding"):
                report.encoding, report.size = msg.encoding, f"{msg.width}x{msg.height}"
                want = _expected_encodings(report.node, report.topic,
                                           self._relative(report.topic))
                if want and msg.encoding not in want:
                    report.problems.append(
                        f"{report.topic} carries {msg.encoding}; {report.node} reads "
                        f"{' or '.join(want)}. Fix: set the driver's encoding or convert "
                        "with camera_ingest (source driver)")
            elif hasattr(msg, "k"):
                report.size = f"{msg.width}x{msg.height}"
        return got

    def parameters(self, name: str, names: list[str]) -> dict[str, object]:
        """Current values of ``names`` on node ``name`` (empty when it does not answer)."""
        client = self.node.create_client(GetParameters,
                                         f"{self.namespace.rstrip('/')}/{name}/get_parameters")
        try:
            if not client.wait_for_service(timeout_sec=2.0):
                return {}
            future = client.call_async(GetParameters.Request(names=names))
            self.spin(3.0, future.done)
            if not future.done() or future.result() is None:
                return {}
            values = {}
            for key, value in zip(names, future.result().values, strict=False):
                values[key] = value.string_value if value.type == 4 else None
            return values
        finally:
            self.node.destroy_client(client)

    def diagnostics(self, seconds: float) -> dict[str, tuple[int, str]]:
        """The newest /diagnostics level and message of each perception node."""
        seen: dict[str, tuple[int, str]] = {}

        def on(msg: DiagnosticArray) -> None:
            for s in msg.status:
                if s.name.startswith("perception: "):
                    level = level_rank(s.level)
                    seen[s.name.removeprefix("perception: ")] = (level, s.message)

        sub = self.node.create_subscription(DiagnosticArray, "/diagnostics", on, 50)
        self.spin(seconds)
        self.node.destroy_subscription(sub)
        return seen


def _qos_mismatch(sub: QoSProfile, pub: QoSProfile) -> str:
    """Why a subscription with ``sub`` gets nothing from a publisher with ``pub`` ('' if it
    does): reliability and durability are requested by the reader, offered by the writer."""
    if sub.reliability == ReliabilityPolicy.RELIABLE and \
            pub.reliability == ReliabilityPolicy.BEST_EFFORT:
        return "reliable; the publisher offers best effort"
    if sub.durability == DurabilityPolicy.TRANSIENT_LOCAL and \
            pub.durability == DurabilityPolicy.VOLATILE:
        return "transient local; the publisher offers volatile"
    return ""


def diagnose(context=None, namespace: str = "/", seconds: float = 3.0) -> dict:
    """The doctor's report: per node its inputs and health, and every problem as a line."""
    doctor = Doctor(context, namespace)
    try:
        doctor.spin(1.0)  # discovery
        names = doctor.nodes()
        report: dict = {"namespace": doctor.namespace, "nodes": {}, "problems": []}
        if not names:
            report["problems"].append(
                f"no perception node runs in {doctor.namespace}. Fix: start the stack "
                "(ros2 launch perception bringup.launch.py namespace:=...) or give "
                "--namespace")
            return report
        inputs = {name: doctor.inputs(name) for name in names}
        every = [r for rs in inputs.values() for r in rs]
        got = doctor.sample(every, seconds)
        health = doctor.diagnostics(min(seconds, 2.0))
        for name in names:
            _check_calibration(doctor, name, inputs[name], got)
            level, message = health.get(name, (None, "no /diagnostics"))
            report["nodes"][name] = {
                "health": LEVEL_NAMES.get(level, "?"), "message": message,
                "inputs": [{"topic": r.topic, "type": r.msg_type, "publishers": r.publishers,
                            "qos_compatible": r.qos_ok, "rate_hz": round(r.rate_hz, 2),
                            "encoding": r.encoding, "frame_id": r.frame_id, "size": r.size}
                           for r in inputs[name]]}
            report["problems"] += [p for r in inputs[name] for p in r.problems]
            if level is not None and level >= 2:
                report["problems"].append(f"{name} reports ERROR: {message}")
        return report
    finally:
        doctor.close()


def _check_calibration(doctor: Doctor, name: str, reports: list[InputReport],
                       got: dict[str, list]) -> None:
    """The node's ``calibration_camera`` against the camera_info it receives."""
    infos = [r for r in reports if r.msg_type == "sensor_msgs/msg/CameraInfo"
             and got.get(r.topic)]
    if not infos:
        return
    params = doctor.parameters(name, ["calibration_camera"])
    camera = params.get("calibration_camera")
    if not camera:
        return
    info = got[infos[0].topic][-1][1]
    try:
        problem = CalibrationCheck(parse_calibration_camera(camera), None).problem(
            intrinsics_from_camera_info(info))
    except ValueError as exc:
        problem = f"its camera_info is unusable: {exc}"
    if problem:
        infos[0].problems.append(f"{name}: {problem}")


def format_report(report: dict) -> str:
    """Human lines: per node its health and inputs, then the problems."""
    lines = [f"perception doctor, namespace {report['namespace']}"]
    for name, node in report["nodes"].items():
        lines.append(f"{name}: {node['health']} ({node['message']})")
        for i in node["inputs"]:
            pubs = ", ".join(i["publishers"]) or "NO PUBLISHER"
            detail = " ".join(x for x in (i["encoding"], i["size"], i["frame_id"]) if x)
            lines.append(f"  <- {i['topic']} [{i['type'].rsplit('/', 1)[-1]}] from {pubs}; "
                         f"{i['rate_hz']:.1f} Hz {detail}"
                         f"{'' if i['qos_compatible'] else '; QoS INCOMPATIBLE'}")
    lines.append(f"{len(report['problems'])} problem(s)")
    lines += [f"- {p}" for p in report["problems"]]
    return "\n".join(lines)
