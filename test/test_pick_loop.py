"""The stalled-loop scenario: the only candidate lies where a pick just lifted nothing.
pick_client backs off instead of hammering it, keeps asking, and tries the spot again once
``retry_failed_s`` has passed (the bin may have changed: the sim swaps a bin nobody picks
from after ``stall_reset_s``), so the loop never stops for good."""

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray, PoseStamped
from hostile import FRAME, HostileRig
from rclpy.parameter import Parameter

from perception_nodes.core.grasp_geometry import grasp_pose
from perception_nodes.nodes.pick_client import PickClientNode
from perception_nodes.ros.messages import pose_msg


def _outcome(lifted: int) -> DiagnosticArray:
    values = {"items_lifted": lifted, "scene_seed": 1, "cup_labels": "0 0"}
    return DiagnosticArray(status=[DiagnosticStatus(values=[
        KeyValue(key=k, value=str(v)) for k, v in values.items()])])


def test_a_failed_spot_is_backed_off_from_and_retried_later(ros_context):
    node = PickClientNode(context=ros_context, parameter_overrides=[
        Parameter("policy", value="grasp_regions"), Parameter("period_s", value=0.1),
        Parameter("retry_failed_s", value=1.5), Parameter("max_backoff", value=4.0)])
    rig = HostileRig(ros_context, node, {"arm/pick_outcome": DiagnosticArray,
                                          "grasp/candidates": PoseArray})
    requests: list[float] = []
    rig.probe.create_subscription(PoseStamped, "arm/pick_request",
                                  lambda _: requests.append(time.monotonic()), 10)
    spot = PoseArray(poses=[pose_msg(grasp_pose(np.array([0.0, 0.0, 0.5]),
                                                np.array([0.0, 0.0, -1.0])))])
    spot.header.frame_id = FRAME

    max_factor = [0.0]

    def offer_until(done, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not done():
            rig.send({"grasp/candidates": spot})  # perception keeps offering the spot
            rig.spin_until(lambda: False, 0.05)
            factor = float(node.health.info.get("backoff_factor", "1"))
            max_factor[0] = max(max_factor[0], factor)
        return done()

    try:
        assert offer_until(lambda: len(requests) == 1, 10.0)
        rig.send({"arm/pick_outcome": _outcome(0)})  # lifted nothing
        assert rig.spin_until(lambda: len(node.failed_spots) == 1)
        failed_at = time.monotonic()
        assert offer_until(lambda: len(requests) == 2, 10.0)
        # not hammered: nothing while the spot was fresh, but asked again after it
        assert requests[1] - failed_at >= 1.5 - 0.05
        assert node.health.counters["no_grasp"] >= 2
        assert max_factor[0] == 4.0  # the empty tries backed off up to max_backoff
        assert node.failures == 0 and node.health.info["backoff_factor"] == "1"
    finally:
        rig.close()
