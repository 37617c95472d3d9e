"""The pipeline benchmark's pieces on exact inputs: the committed bag, the per-stage
summary, and the node command lines it shares with launch."""

from pathlib import Path

from perception_nodes.eval.pipeline_bench import TOPICS, load_frames, summarise
from perception_nodes.eval.processes import node_command, ros_args

BAG = Path(__file__).resolve().parent / "data" / "pipeline_bag"


def test_the_committed_bag_holds_whole_640x480_rgbd_frames():
    frames = load_frames(BAG)
    assert len(frames) == 4
    for frame in frames:
        assert set(frame) == set(TOPICS)
        color, depth = frame["/camera/color/image_raw"], frame["/camera/depth/image_raw"]
        assert (color.width, color.height, color.encoding) == (640, 480, "rgb8")
        assert (depth.width, depth.height, depth.encoding) == (640, 480, "16UC1")
        assert color.header.stamp == depth.header.stamp
        assert frame["/camera/color/camera_info"].k[0] > 0


def test_summary_counts_delivery_and_stage_latency_per_stamp():
    keys = [(0, 1), (0, 2), (0, 3), (0, 4)]
    sent = {k: 10.0 + i for i, k in enumerate(keys)}
    labels = {(0, 1): 10.05, (0, 2): 11.07, (0, 3): 12.09}  # frame 4 never segmented
    candidates = {(0, 1): 10.10, (0, 2): 11.20}  # frame 3 lost between the nodes
    out = summarise(keys, sent, labels, candidates, rate_hz=1.0)
    assert out["published"] == 4
    assert out["segmented_share"] == 0.75 and out["delivered_share"] == 0.5
    assert out["camera_to_segmentation"]["p50_ms"] == 70.0
    assert out["camera_to_candidates"] == {"p50_ms": 150.0, "p99_ms": 199.0}
    assert out["segmentation_to_candidates"]["p50_ms"] == 90.0
    empty = summarise([], {}, {}, {}, 10.0)
    assert empty["delivered_share"] is None and empty["camera_to_candidates"]["p50_ms"] is None


def test_nodes_start_with_the_arguments_launch_passes():
    assert ros_args("segmentation", "cfg.yaml", "cell1", {"max_fps": 0.0, "on": True}) == [
        "--ros-args", "-r", "__node:=segmentation", "-r", "__ns:=/cell1", "--params-file",
        "cfg.yaml", "-p", "max_fps:=0.0", "-p", "on:=true"]
    command = node_command("grasp_regions")
    assert command[1:3] == ["-m", "perception_nodes.nodes.grasp_regions"]
