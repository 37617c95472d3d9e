"""sim_cell: the simulated picking cell as a ROS 2 node (a stand-in for camera + robot).

Publishes an overhead RGB-D camera and ground truth, takes pick requests, and reports the
suction gauge and the physical outcome of each pick. Topics (relative):

- out ``sim/color/image_raw`` rgb8, ``sim/color/camera_info``, ``sim/depth/image_raw`` 32FC1 m,
  ``sim/instance_labels`` mono16 ground truth, ``sim/camera_pose`` PoseStamped (world);
- in ``arm/pick_request`` PoseStamped: gripper pose in ``world`` or the camera frame, z out
  of the surface (the gripper approaches along -z);
- out ``arm/suction_gauge`` Float32MultiArray (vacuum kPa per cup), ``arm/pick_outcome``
  DiagnosticArray, ``sim/pick/before/image_raw`` and ``sim/pick/after/image_raw`` rgb8.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray, Header
from std_srvs.srv import Trigger

from perception_nodes.core.conventions import CAMERA_FRAME, WORLD_FRAME
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import (
    camera_info_msg,
    labelled_array,
    matrix_from_pose_msg,
    pose_msg,
)
from perception_nodes.ros.params import Param
from perception_nodes.sim.cell import CellConfig, PickingCell, orbit_camera_poses
from perception_nodes.sim.suction import CUP_STATE_NAMES, PickOutcome, execute_pick


class SimCellNode(ManagedNode):
    PARAMS = (
        Param("seed", 0, "seed of the first scene; each reset takes the next seed", min=0,
              max=2**31 - 1),
        Param("width", 640, "image width (px)", min=16, max=4096),
        Param("height", 480, "image height (px)", min=16, max=4096),
        Param("fov_y_deg", 45.0, "vertical field of view (deg)", min=10.0, max=120.0),
        Param("rate_hz", 5.0, "camera frame rate (Hz)", min=0.1, max=120.0),
        Param("item_split", "train", "item set to draw from", choices=("train", "test")),
        Param("min_items", 5, "fewest items in a new scene", min=1, max=60),
        Param("max_items", 30, "most items in a new scene", min=1, max=60),
        Param("num_foreign", 0, "foreign objects added to each scene", min=0, max=10),
        Param("camera_mode", "fixed", "fixed overhead camera, or moving along a loop",
              choices=("fixed", "moving")),
        Param("moving_frames", 60, "frames per loop in moving mode", min=4, max=10000),
        Param("reset_below_items", 3, "start a new scene when fewer items remain", min=0,
              max=60),
        Param("frame_id", CAMERA_FRAME, "frame_id of the camera (optical frame)"),
        Param("stall_reset_s", 0.0, "start a new scene when no pick request came for this "
              "long, as an operator swaps a bin the arm cannot pick from (0 = never)",
              min=0.0, max=3600.0),
        Param("look", "classic", "scene appearance: the first cell's grey tray and fixed "
              "camera (classic), or drawn per scene from the training or the held-out "
              "domain (docs/sim.md; the camera, bin and item count then come from the "
              "scene, not fov_y_deg, min_items and max_items)",
              choices=("classic", "train", "novel")),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_cell", **kwargs)

    def check_params(self, params: dict) -> None:
        CellConfig(width=params["width"], height=params["height"],
                   min_items=params["min_items"], max_items=params["max_items"])

    def configure_io(self) -> None:
        p = self.params
        self.config = CellConfig(width=p["width"], height=p["height"],
                                 fov_y_deg=p["fov_y_deg"], min_items=p["min_items"],
                                 max_items=p["max_items"], item_split=p["item_split"],
                                 num_foreign=p["num_foreign"],
                                 style_domain=None if p["look"] == "classic" else p["look"])
        self.scene_seed = p["seed"]
        self.cell = PickingCell(self.config, self.scene_seed)
        self.last_pick = time.monotonic()
        self.picks = 0
        self.lock = threading.Lock()  # pybullet is not thread-safe
        self.orbit = orbit_camera_poses(p["moving_frames"])
        q = self.pub_qos
        self.pub_rgb = self.create_publisher(Image, "sim/color/image_raw", q)
        self.pub_info = self.create_publisher(CameraInfo, "sim/color/camera_info", q)
        self.pub_depth = self.create_publisher(Image, "sim/depth/image_raw", q)
        self.pub_labels = self.create_publisher(Image, "sim/instance_labels", q)
        self.pub_pose = self.create_publisher(PoseStamped, "sim/camera_pose", q)
        self.pub_gauge = self.create_publisher(Float32MultiArray, "arm/suction_gauge", q)
        self.pub_outcome = self.create_publisher(DiagnosticArray, "arm/pick_outcome", q)
        self.pub_before = self.create_publisher(Image, "sim/pick/before/image_raw", q)
        self.pub_after = self.create_publisher(Image, "sim/pick/after/image_raw", q)
        self.create_subscription(PoseStamped, "arm/pick_request", self._on_pick, 10)
        self.create_service(Trigger, "sim/reset", self._on_reset)
        self.timer = self.create_timer(1.0 / p["rate_hz"], self._on_timer)
        self.health.info["scene_seed"] = str(self.scene_seed)

    def release_io(self) -> None:
        if getattr(self, "cell", None) is not None:
            with self.lock:
                self.cell.close()
            self.cell = None

    def _header(self, frame_id: str) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id=frame_id)

    def _on_timer(self) -> None:
        if not self.active or self.cell is None:
            return
        stall = self.params["stall_reset_s"]
        if stall > 0 and time.monotonic() - self.last_pick > stall:
            with self.lock:
                self.scene_seed += 1
                self.cell.reset(self.scene_seed)
            self.last_pick = time.monotonic()
            self.health.count("stall_resets")
            self.health.info["scene_seed"] = str(self.scene_seed)
        with self.lock:
            pose = None
            if self.params["camera_mode"] == "moving":
                pose = self.orbit[self.cell.frame_index % len(self.orbit)]
            frame = self.cell.render(pose)
        header = self._header(self.params["frame_id"])
        self.pub_rgb.publish(numpy_to_image(frame.rgb, "rgb8", header))
        self.pub_depth.publish(numpy_to_image(frame.depth, "32FC1", header))
        self.pub_labels.publish(numpy_to_image(frame.labels, "mono16", header))
        self.pub_info.publish(camera_info_msg(frame.intrinsics, header))
        self.pub_pose.publish(PoseStamped(header=Header(stamp=header.stamp, frame_id=WORLD_FRAME),
                                          pose=pose_msg(frame.camera_pose)))
        self.health.published()

    def _on_pick(self, msg: PoseStamped) -> None:
        if not self.active or self.cell is None:
            return
        try:
            pose = matrix_from_pose_msg(msg.pose)
            if msg.header.frame_id == self.params["frame_id"]:
                pose = self.cell.home_camera_pose @ pose
            elif msg.header.frame_id != WORLD_FRAME:
                raise ValueError(f"frame_id {msg.header.frame_id!r} is neither "
                                 f"{WORLD_FRAME!r} nor {self.params['frame_id']!r}")
        except ValueError as exc:
            self.health.malformed(f"pick request: {exc}")
            self.get_logger().warning(f"dropped malformed pick request: {exc}")
            return
        self.last_pick = time.monotonic()
        with self.lock:
            outcome = execute_pick(self.cell, pose[:3, 3], pose[:3, :3], pick_index=self.picks)
            self.picks += 1
            remaining = len(self.cell.items)
            if remaining < self.params["reset_below_items"]:
                self.scene_seed += 1
                self.cell.reset(self.scene_seed)
                self.health.info["scene_seed"] = str(self.scene_seed)
        self._publish_outcome(msg, outcome, remaining)

    def _publish_outcome(self, request: PoseStamped, outcome: PickOutcome, remaining: int) -> None:
        header = self._header(self.params["frame_id"])
        gauge = labelled_array(outcome.vacuum_kpa,
                               [f"cup{i}_vacuum_kpa" for i in range(outcome.vacuum_kpa.size)])
        self.pub_gauge.publish(gauge)
        self.pub_before.publish(numpy_to_image(outcome.before.rgb, "rgb8", header))
        self.pub_after.publish(numpy_to_image(outcome.after.rgb, "rgb8", header))
        if outcome.double_pick:
            level, text = DiagnosticStatus.WARN, "double pick"
        elif outcome.success:
            level, text = DiagnosticStatus.OK, "single item picked"
        else:
            level, text = DiagnosticStatus.ERROR, "nothing picked"
        stamp = request.header.stamp
        values = {
            "pick_index": self.picks - 1,
            "items_lifted": outcome.num_lifted,
            "lifted_labels": " ".join(map(str, outcome.lifted_labels)),
            "double_pick": str(outcome.double_pick).lower(),
            "cup_states": " ".join(CUP_STATE_NAMES[s] for s in outcome.cup_state),
            "cup_vacuum_kpa": " ".join(f"{v:.1f}" for v in outcome.vacuum_kpa),
            "cup_labels": " ".join(map(str, outcome.cup_labels)),
            "request_stamp": f"{stamp.sec}.{stamp.nanosec:09d}",
            "items_remaining": remaining,
            "scene_seed": self.scene_seed,
        }
        status = DiagnosticStatus(level=level, name="sim_cell: pick", message=text,
                                  hardware_id="sim_suction_gripper",
                                  values=[KeyValue(key=k, value=str(v))
                                          for k, v in values.items()])
        self.pub_outcome.publish(DiagnosticArray(header=header, status=[status]))
        self.health.count("picks")
        if outcome.double_pick:
            self.health.count("double_picks")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.scene_seed += 1
            self.cell.reset(self.scene_seed)
        self.health.info["scene_seed"] = str(self.scene_seed)
        response.success, response.message = True, f"new scene, seed {self.scene_seed}"
        return response


def main(args: list[str] | None = None) -> int:
    return run_node(SimCellNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
