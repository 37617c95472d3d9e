"""The committed bag of the stack on the sim: contents, stamps, overlays, summary."""

from pathlib import Path

import numpy as np

from perception_nodes.eval.demo import DEMO_TOPICS, summarise, write_overlays
from perception_nodes.ros.bags import deserialize, read_bag
from perception_nodes.ros.image_conversion import image_to_numpy

BAG = Path(__file__).parent / "data" / "sim_cell_bag"


def test_bag_holds_camera_ground_truth_and_pick_topics():
    topics = {topic for topic, *_ in read_bag(BAG)}
    assert topics == set(DEMO_TOPICS)


def test_images_and_ground_truth_share_stamps_and_sizes():
    images, labels = {}, {}
    for topic, msgtype, _, raw in read_bag(BAG, ["/camera/color/image_raw",
                                                 "/sim/instance_labels"]):
        msg = deserialize(raw, msgtype)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        (images if topic == "/camera/color/image_raw" else labels)[key] = msg
    common = set(images) & set(labels)
    assert len(common) >= 0.8 * len(images) > 0
    key = sorted(common)[0]
    rgb, lab = image_to_numpy(images[key]), image_to_numpy(labels[key])
    assert rgb.shape == (96, 128, 3) and lab.shape == (96, 128) and lab.dtype == np.uint16
    assert lab.max() > 0


def test_pick_outcomes_are_documented_key_values():
    outcomes = [deserialize(raw, t) for _, t, _, raw in read_bag(BAG, ["/arm/pick_outcome"])]
    assert outcomes
    keys = {kv.key for kv in outcomes[0].status[0].values}
    assert {"items_lifted", "double_pick", "cup_states", "cup_vacuum_kpa"} <= keys
    summary = summarise(BAG)
    assert sum(summary["picks"].values()) == len(outcomes)


def test_overlays_are_written_with_pick_frames(tmp_path):
    paths = write_overlays(BAG, tmp_path, every=5)
    assert paths and all(p.stat().st_size > 0 for p in paths)
    assert any(p.name.endswith("_pick.png") for p in paths)


def test_grasp_candidates_match_segmentation_frames_and_lie_on_their_instances():
    labels, candidates, info = {}, {}, {}
    for topic, msgtype, _, raw in read_bag(BAG, ["/segmentation/instance_labels",
                                                 "/grasp/candidates", "/grasp/candidate_info"]):
        msg = deserialize(raw, msgtype)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        {"/segmentation/instance_labels": labels, "/grasp/candidates": candidates,
         "/grasp/candidate_info": info}[topic][key] = msg
    assert candidates and set(candidates) <= set(labels) and set(candidates) == set(info)
    with_poses = [k for k, m in candidates.items() if m.poses]
    assert with_poses
    for key in with_poses:
        rows = image_to_numpy(info[key])
        assert rows.shape == (len(candidates[key].poses), 8)
        seg = image_to_numpy(labels[key])
        u, v, instance = rows[:, 5].astype(int), rows[:, 6].astype(int), rows[:, 2]
        assert (seg[v, u] == instance).all()  # each centre lies on its own instance
