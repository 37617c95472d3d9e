"""rosbag2 bags (MCAP or sqlite3) recorded from and replayed to live topics, with rosbags.

Bags are written under a hidden staging folder (``.NAME.partial/NAME``) and moved to ``PATH``
when closed, so a bag at ``PATH`` is always complete. They are standard rosbag2 bags:
``ros2 bag info/play`` read them.
"""

from __future__ import annotations

import importlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from perception_nodes.ros.qos import QOS_PROFILES

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def msgtype_of(msg_class: type) -> str:
    """``pkg/msg/Name`` of an rclpy message class."""
    pkg = msg_class.__module__.split(".")[0]
    return f"{pkg}/msg/{msg_class.__name__}"


def read_bag(path: Path | str, topics: list[str] | None = None
             ) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield ``(topic, msgtype, log time ns, CDR bytes)`` in time order."""
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:  # rosbags reads every connection when given none
            return
        for conn, timestamp, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, timestamp, bytes(raw)


def bag_connections(path: Path | str) -> list[tuple[str, str]]:
    """``(topic, msgtype)`` of every connection of a bag, without reading its messages."""
    with Reader(Path(path)) as reader:
        return [(c.topic, c.msgtype) for c in reader.connections]


def deserialize(raw: bytes, msgtype: str):
    """Decode CDR bytes into a rosbags message object (attribute access like rclpy's)."""
    return TYPESTORE.deserialize_cdr(raw, msgtype)


class BagWriter:
    """A bag written message by message (MCAP by default): CDR bytes with their
    ``pkg/msg/Name``, or rclpy messages (serialized here); one connection per topic, made
    on first use. A context manager."""

    def __init__(self, path: Path | str, storage: str = "mcap") -> None:
        from rclpy.serialization import serialize_message

        self._serialize = serialize_message
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self.writer = Writer(Path(path), version=9, storage_plugin=plugin)
        self.writer.open()
        self.connections: dict[str, object] = {}

    def write(self, topic: str, msg, time_ns: int, msgtype: str | None = None) -> None:
        """``msg``: bytes (then ``msgtype`` is required) or an rclpy message."""
        if isinstance(msg, (bytes, bytearray, memoryview)):
            raw = bytes(msg)
        else:
            msgtype, raw = msgtype or msgtype_of(type(msg)), self._serialize(msg)
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype,
                                                                 typestore=TYPESTORE)
        self.writer.write(self.connections[topic], time_ns, raw)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BagRecorder:
    """Records topics into a bag, subscribing once a publisher appears, with its reliability.

    Args:
        node: the node that owns the subscriptions (spun by the caller's executor).
        path: the bag folder to create.
        topics: fully qualified topic -> ``pkg/msg/Name``.
        storage: ``mcap`` or ``sqlite3``.
    """

    def __init__(self, node: Node, path: Path | str, topics: dict[str, str],
                 storage: str = "mcap") -> None:
        self.node, self.path, self.topics = node, Path(path), dict(topics)
        self.staging = self.path.with_name(f".{self.path.name}.partial")
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} exists")
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        self.partial = self.staging / self.path.name
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self.writer = Writer(self.partial, version=9, storage_plugin=plugin)
        self.writer.open()
        self.lock = threading.Lock()
        self.connections: dict[str, object] = {}
        self.subscriptions = []
        self.counts: dict[str, int] = {}
        self._timer = node.create_timer(0.2, self._subscribe_new)
        self._subscribe_new()

    def _subscribe_new(self) -> None:
        for topic, msgtype in self.topics.items():
            if topic in self.connections:
                continue
            pubs = self.node.get_publishers_info_by_topic(topic)
            if not pubs:
                continue
            reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs)
            qos = QOS_PROFILES["reliable" if reliable else "sensor_data"]
            qos = QoSProfile(history=qos.history, depth=100, reliability=qos.reliability,
                             durability=qos.durability)
            with self.lock:
                self.connections[topic] = self.writer.add_connection(topic, msgtype,
                                                                     typestore=TYPESTORE)
            self.counts[topic] = 0
            self.subscriptions.append(self.node.create_subscription(
                message_class(msgtype), topic, lambda raw, t=topic: self._write(t, raw), qos,
                raw=True))

    def _write(self, topic: str, raw: bytes) -> None:
        with self.lock:
            if self.writer is None:
                return
            self.writer.write(self.connections[topic], time.time_ns(), raw)
            self.counts[topic] += 1

    def close(self) -> Path:
        """Stop recording, finish the bag, move it into place; returns its path."""
        self._timer.cancel()
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        with self.lock:
            self.writer.close()
            self.writer = None
        self.partial.rename(self.path)
        self.staging.rmdir()
        return self.path


class BagPlayer:
    """Publishes a bag's messages at their recorded rate (times ``rate``), like ros2 bag play."""

    def __init__(self, node: Node, path: Path | str, rate: float = 1.0,
                 topics: list[str] | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.node, self.path, self.rate, self.topics = node, Path(path), rate, topics
        with Reader(self.path) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            self.publishers = {c.topic: node.create_publisher(
                message_class(c.msgtype), c.topic, QOS_PROFILES["reliable"]) for c in conns}
        self.published = 0

    def play(self, stop: threading.Event | None = None) -> int:
        """Publish every message once, sleeping to keep the recorded spacing; returns count."""
        start_wall = time.monotonic()
        first = None
        for topic, _, timestamp, raw in read_bag(self.path, self.topics):
            if stop is not None and stop.is_set():
                break
            first = timestamp if first is None else first
            delay = (timestamp - first) * 1e-9 / self.rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            self.publishers[topic].publish(raw)
            self.published += 1
        return self.published

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until reliable subscribers acknowledged everything published (a process that
        exits right after the last message would otherwise take it with it)."""
        from rclpy.duration import Duration

        return all(pub.wait_for_all_acked(Duration(seconds=timeout_s))
                   for pub in self.publishers.values())
