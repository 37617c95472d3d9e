"""Real rclpy nodes spun together: sim_cell -> camera_ingest -> topics, picks, bad input."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.bringup import Bringup
from perception_nodes.nodes.camera_ingest import CameraIngestNode
from perception_nodes.nodes.sim_cell import SimCellNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image
from perception_nodes.ros.params import ParameterValueError
from perception_nodes.ros.qos import qos_by_name
from perception_nodes.sim.cell import CellConfig, PickingCell

SIM = {"look": "classic", "width": 160, "height": 120, "min_items": 5, "max_items": 8,
       "rate_hz": 10.0, "seed": 5}


def wait_for(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def cell_stack():
    bringup = Bringup(nodes=["sim_cell", "camera_ingest"],
                      overrides={"sim_cell": SIM, "camera_ingest": {"rate_hz": 0.0}})
    probe = Node("test_probe", context=bringup.context)
    bringup.add_node(probe)
    bringup.start()
    yield bringup, probe
    bringup.shutdown()


def test_ingest_delivers_the_sims_pixels_with_its_stamps(cell_stack):
    bringup, probe = cell_stack
    got = {"rgb": [], "depth": [], "labels": []}
    sensor = qos_by_name("sensor_data")
    probe.create_subscription(Image, "camera/color/image_raw", got["rgb"].append, sensor)
    probe.create_subscription(Image, "camera/depth/image_raw", got["depth"].append, sensor)
    probe.create_subscription(Image, "sim/instance_labels", got["labels"].append, 10)
    assert wait_for(lambda: len(got["rgb"]) >= 3 and len(got["labels"]) >= 3)
    with PickingCell(CellConfig(width=160, height=120, min_items=5, max_items=8),
                     seed=5) as cell:
        expected = [cell.render() for _ in range(40)]
    rgb_msg = got["rgb"][1]
    rgb = image_to_numpy(rgb_msg)
    matches = [f for f in expected if np.array_equal(f.rgb, rgb)]
    assert len(matches) == 1, "ingest output must equal one frame the seeded sim renders"
    labels_by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in got["labels"]}
    key = (rgb_msg.header.stamp.sec, rgb_msg.header.stamp.nanosec)
    assert key in labels_by_stamp  # derived topics share the image's exact stamp
    np.testing.assert_array_equal(image_to_numpy(labels_by_stamp[key]), matches[0].labels)
    assert rgb_msg.header.frame_id == "camera_color_optical_frame"
    depth = image_to_numpy(got["depth"][1])
    assert depth.dtype == np.float32 and depth.shape == (120, 160)


def test_malformed_frames_are_counted_and_dropped_and_the_node_keeps_going(cell_stack):
    bringup, probe = cell_stack
    ingest = bringup.nodes["camera_ingest"]
    out = []
    probe.create_subscription(Image, "camera/color/image_raw", out.append,
                              qos_by_name("sensor_data"))
    pubs = [probe.create_publisher(Image, "sim/color/image_raw", 10),
            probe.create_publisher(Image, "sim/depth/image_raw", 10),
            probe.create_publisher(CameraInfo, "sim/color/camera_info", 10)]
    assert wait_for(lambda: len(out) >= 1)
    bad = numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    bad.data = bytes(5)  # short: step * height = 48
    depth = numpy_to_image(np.ones((4, 4), np.float32), "32FC1")
    assert wait_for(lambda: all(p.get_subscription_count() for p in pubs))
    for pub, msg in zip(pubs, (bad, depth, CameraInfo()), strict=True):
        msg.header.stamp.sec = 7
        pub.publish(msg)
    assert wait_for(lambda: ingest.health.counters["malformed"] >= 1)
    before = len(out)
    assert wait_for(lambda: len(out) > before + 2)  # still relaying the sim


def test_pick_requests_yield_outcomes_and_bad_frames_are_rejected(cell_stack):
    bringup, probe = cell_stack
    sim = bringup.nodes["sim_cell"]
    outcomes, gauges = [], []
    probe.create_subscription(DiagnosticArray, "arm/pick_outcome", outcomes.append, 10)
    from std_msgs.msg import Float32MultiArray

    probe.create_subscription(Float32MultiArray, "arm/suction_gauge", gauges.append, 10)
    pub = probe.create_publisher(PoseStamped, "arm/pick_request", 10)
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    bogus = PoseStamped()
    bogus.header.frame_id = "base_link"
    bogus.pose.orientation.w = 1.0
    pub.publish(bogus)
    assert wait_for(lambda: sim.health.counters["malformed"] == 1)
    request = PoseStamped()
    request.header.frame_id = "world"
    request.pose.position.z = 0.05
    request.pose.orientation.w = 1.0
    pub.publish(request)
    assert wait_for(lambda: len(outcomes) == 1 and len(gauges) == 1)
    values = {kv.key: kv.value for kv in outcomes[0].status[0].values}
    assert int(values["items_lifted"]) >= 0 and values["double_pick"] in ("true", "false")
    assert len(values["cup_states"].split()) == 5
    assert gauges[0].layout.dim[0].size == 5


def test_bad_parameter_is_rejected_at_startup(ros_context):
    with pytest.raises(ParameterValueError, match="item_split"):
        SimCellNode(context=ros_context,
                    parameter_overrides=[Parameter("item_split", value="validation")])
    with pytest.raises(ParameterValueError, match="path"):
        CameraIngestNode(context=ros_context,
                         parameter_overrides=[Parameter("source", value="folder")])


def test_autostart_false_waits_for_a_lifecycle_manager(ros_context):
    node = SimCellNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), *(Parameter(k, value=v) for k, v in SIM.items())])
    try:
        assert not node.active and not hasattr(node, "cell")
        node.trigger_configure()
        node.trigger_activate()
        assert node.active and node.cell is not None
    finally:
        node.release_io()
        node.destroy_node()


def test_a_bin_the_arm_cannot_pick_from_is_swapped_after_the_stall_time(ros_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from perception_nodes.nodes.sim_cell import SimCellNode

    node = SimCellNode(context=ros_context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {**SIM, "stall_reset_s": 0.3}.items()])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    first = node.scene_seed
    end = time.monotonic() + 10
    while node.scene_seed == first and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    assert node.scene_seed == first + 1 and node.health.counters["stall_resets"] == 1
    node.destroy_node()
