"""pick_client: the arm's side of the simulated cell; chooses a grasp and requests a pick.

Policy ``grasp_regions`` executes the top candidate of ``grasp/candidates`` (what the arm
of a real cell consumes), skipping candidates within 2 cm of a spot whose pick lifted
nothing in the last ``retry_failed_s`` seconds (the bin may have changed since: an operator
swapped it, items slid), and NaN poses. When no candidate is usable it backs off: the next
try waits ``period_s`` times 2 per empty try in a row, at most ``max_backoff`` times; a
request resets it. So the loop never stops for good on a bin it cannot pick from, and does
not hammer one either. Policy ``oracle`` picks the
topmost ground-truth instance (``sim/instance_labels`` with ``camera/depth/image_raw``)
whose interior fits a suction cup on a flat patch, with the surface normal fitted to the
depth there: it exercises the cell and is not a perception result. Items whose pick lifted
nothing (``arm/pick_outcome``) are not tried again in the same scene, as a cell retries
elsewhere after a failed grasp. Publishes ``arm/pick_request`` (PoseStamped, camera optical
frame, z out of the surface) every ``period_s`` seconds.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.grasp_geometry import oracle_grasp
from perception_nodes.ros.image_conversion import ImageConversionError, image_to_numpy
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import (
    intrinsics_from_camera_info,
    matrix_from_pose_msg,
    pose_msg,
)
from perception_nodes.ros.params import Param
from perception_nodes.ros.sync import Subscriber


class PickClientNode(ManagedNode):
    PARAMS = (
        Param("policy", "oracle", "how to choose grasps: ground truth (oracle) or the "
              "perception stack's top candidate (grasp_regions)",
              choices=("oracle", "grasp_regions")),
        Param("period_s", 3.0, "seconds between pick requests", min=0.1, max=3600.0),
        Param("min_pixels", 150, "smallest visible item to pick (px)", min=1, max=10**6),
        Param("outcome_timeout_s", 10.0, "wait at most this long for a pick's outcome before "
              "the next request", min=0.1, max=600.0),
        Param("cup_radius_m", 0.009, "suction cup radius (m): the grasp must fit one cup",
              min=0.001, max=0.1),
        Param("max_plane_rms_m", 0.003, "roughest acceptable patch under the cup (m rms); "
              "above the depth noise (about 1.7 mm rms at 0.9 m)",
              min=0.0, max=0.05),
        Param("retry_failed_s", 120.0, "a spot whose pick lifted nothing is tried again after "
              "this long (s)", min=0.0, max=3600.0),
        Param("max_backoff", 4.0, "with no usable candidate in a row the request period "
              "grows up to this factor", min=1.0, max=100.0),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("pick_client", **kwargs)

    def configure_io(self) -> None:
        self.latest = None
        self.target = 0
        self.pending_since: float | None = None  # one pick at a time, as an arm does
        self.last_outcome = (0, 0)  # stamp of the last outcome: older frames are stale
        self.pub = self.create_publisher(PoseStamped, "arm/pick_request", self.pub_qos)
        subs = [Subscriber(self, Image, "sim/instance_labels", self.sub_qos),
                Subscriber(self, Image, "camera/depth/image_raw", self.sub_qos),
                Subscriber(self, CameraInfo, "camera/color/camera_info", self.sub_qos)]
        self.sync = self.synchroniser(subs, 10)
        self.sync.registerCallback(self._on_frame)
        self.create_subscription(PoseArray, "grasp/candidates", self._on_candidates,
                                 self.sub_qos)
        self.candidates: PoseArray | None = None
        self.failed_spots: list[tuple[np.ndarray, float]] = []  # (point, when)
        self.failures = 0  # tries in a row that found no usable candidate
        self.next_request = 0.0
        self.last_point: np.ndarray | None = None
        self.failed: set[int] = set()
        self.scene = None
        self.create_subscription(DiagnosticArray, "arm/pick_outcome", self._on_outcome, 10)
        self.timer = self.create_timer(self.params["period_s"], self._on_timer)

    def _on_frame(self, labels: Image, depth: Image, info: CameraInfo) -> None:
        if (depth.header.stamp.sec, depth.header.stamp.nanosec) <= self.last_outcome:
            return
        self.latest = (labels, depth, info)
        self.health.count("received")

    def _on_candidates(self, msg: PoseArray) -> None:
        if (msg.header.stamp.sec, msg.header.stamp.nanosec) > self.last_outcome:
            self.candidates = msg

    def _on_outcome(self, msg: DiagnosticArray) -> None:
        self.pending_since = None
        self.last_outcome = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.latest = None
        values = {kv.key: kv.value for s in msg.status for kv in s.values}
        try:  # a real arm reports items_lifted; the sim adds its scene and cup labels
            lifted = int(values["items_lifted"])
            labels = [int(v) for v in values.get("cup_labels", "").split()]
        except (KeyError, ValueError) as exc:
            self.health.malformed(f"pick outcome: {exc}")
            return
        scene = values.get("scene_seed", self.scene)
        self.candidates = None
        if scene != self.scene:
            self.scene, self.failed, self.failed_spots = scene, set(), []
        if lifted == 0 and self.last_point is not None:
            self.failed_spots.append((self.last_point, time.monotonic()))
        if lifted == 0:
            self.failed.update(label for label in labels if label)
            self.failed.add(self.target)

    def _on_timer(self) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if self.pending_since is not None and \
                now - self.pending_since < self.params["outcome_timeout_s"]:
            return
        if now < self.next_request:
            return
        if self.params["policy"] == "grasp_regions":
            self._request_top_candidate(now)
            return
        if self.latest is None:
            return
        labels_msg, depth_msg, info = self.latest
        self.latest = None
        try:
            labels, depth = image_to_numpy(labels_msg), image_to_numpy(depth_msg)
            intrinsics = intrinsics_from_camera_info(info)
        except (ImageConversionError, ValueError) as exc:
            self.drop_malformed("frame", exc)
            return
        p = self.params
        grasp = oracle_grasp(labels, depth, intrinsics, p["min_pixels"], p["cup_radius_m"],
                             p["max_plane_rms_m"], exclude=frozenset(self.failed))
        if grasp is None:
            self.health.count("no_grasp")
            return
        self.target, pose = grasp
        msg = PoseStamped(header=depth_msg.header, pose=pose_msg(pose))
        self.pub.publish(msg)
        self.pending_since = now
        self.health.published()
        self.health.info["last_target"] = str(self.target)


    def _back_off(self, now: float) -> None:
        """No try for ``period_s * 2^failures`` (at most ``max_backoff`` periods), counted
        with the timer's own period; none after a request (failures 0)."""
        p = self.params
        factor = min(2.0 ** self.failures, p["max_backoff"])
        self.next_request = now + (factor - 1.0) * p["period_s"]
        self.health.info["backoff_factor"] = f"{factor:g}"

    def _request_top_candidate(self, now: float) -> None:
        msg, self.candidates = self.candidates, None
        if msg is None:
            return
        recent = [spot for spot, when in self.failed_spots
                  if now - when < self.params["retry_failed_s"]]
        self.failed_spots = [(s, w) for s, w in self.failed_spots
                             if now - w < self.params["retry_failed_s"]]
        for pose in msg.poses:
            try:
                matrix_from_pose_msg(pose)
            except ValueError as exc:  # an arm must never be sent there
                self.drop_malformed("candidate", exc)
                continue
            point = np.array([pose.position.x, pose.position.y, pose.position.z])
            if all(np.linalg.norm(point - spot) > 0.02 for spot in recent):
                self.last_point = point
                self.failures = 0
                self._back_off(now)
                self.pub.publish(PoseStamped(header=msg.header, pose=pose))
                self.pending_since = now
                self.health.published()
                return
        self.failures += 1
        self._back_off(now)
        self.health.count("no_grasp")


def main(args: list[str] | None = None) -> int:
    return run_node(PickClientNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
