"""Record live topics to a rosbag2 bag, read it back, replay it: identical messages."""

import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from perception_nodes.ros.bags import BagPlayer, BagRecorder, deserialize, read_bag
from perception_nodes.ros.image_conversion import numpy_to_image
from perception_nodes.ros.qos import qos_by_name

TOPICS = {"/t/image": "sensor_msgs/msg/Image", "/t/pose": "geometry_msgs/msg/PoseStamped"}


def _messages(n=5):
    rng = np.random.default_rng(9)
    images, poses = [], []
    for i in range(n):
        img = numpy_to_image(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "rgb8")
        img.header.stamp.sec, img.header.frame_id = i, "cam"
        pose = PoseStamped()
        pose.header.stamp.sec = i
        pose.pose.position.x = float(i) / 3
        pose.pose.orientation.w = 1.0
        images.append(img)
        poses.append(pose)
    return images, poses


def _spin(executor, seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        executor.spin_once(timeout_sec=0.02)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_replay_read_back_identical(ros_context, tmp_path, storage):
    images, poses = _messages()
    pub_node = Node("bag_pub", context=ros_context)
    rec_node = Node("bag_rec", context=ros_context)
    pub_img = pub_node.create_publisher(Image, "/t/image", qos_by_name("reliable"))
    pub_pose = pub_node.create_publisher(PoseStamped, "/t/pose", qos_by_name("reliable"))
    executor = SingleThreadedExecutor(context=ros_context)
    for n in (pub_node, rec_node):
        executor.add_node(n)
    recorder = BagRecorder(rec_node, tmp_path / "bag", TOPICS, storage=storage)
    _spin(executor, 10, lambda: len(recorder.subscriptions) == 2
          and pub_img.get_subscription_count() and pub_pose.get_subscription_count())
    for img, pose in zip(images, poses, strict=True):
        pub_img.publish(img)
        pub_pose.publish(pose)
        _spin(executor, 0.05)
    _spin(executor, 5, lambda: sum(recorder.counts.values()) == 10)
    path = recorder.close()
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bag"]

    records = list(read_bag(path))
    # Compare decoded messages: CDR alignment padding bytes are not initialised by rmw.
    expected = {"/t/image": (Image, images), "/t/pose": (PoseStamped, poses)}
    for topic, (cls, msgs) in expected.items():
        assert [deserialize_message(r[3], cls) for r in records if r[0] == topic] == msgs
    decoded = deserialize(records[0][3], records[0][1])
    assert decoded.header.stamp.sec == 0

    # replay to a raw subscriber: what arrives decodes to the recorded messages
    replayed = {t: [] for t in TOPICS}
    sub_node = Node("bag_sub", context=ros_context)
    for topic, msgtype in TOPICS.items():
        cls = Image if msgtype.endswith("Image") else PoseStamped
        sub_node.create_subscription(cls, topic, replayed[topic].append,
                                     qos_by_name("reliable"), raw=True)
    executor.add_node(sub_node)
    player = BagPlayer(pub_node, path, rate=10.0)
    _spin(executor, 10, lambda: all(p.get_subscription_count() for p in
                                    player.publishers.values()))
    _spin(executor, 0.3)
    assert player.play() == 10
    _spin(executor, 5, lambda: sum(map(len, replayed.values())) == 10)
    for topic, (cls, msgs) in expected.items():
        assert [deserialize_message(bytes(r), cls) for r in replayed[topic]] == msgs
    for n in (pub_node, rec_node, sub_node):
        n.destroy_node()


def test_recorder_refuses_to_overwrite(ros_context, tmp_path):
    (tmp_path / "bag").mkdir()
    node = Node("bag_rec2", context=ros_context)
    with pytest.raises(FileExistsError):
        BagRecorder(node, tmp_path / "bag", TOPICS)
    node.destroy_node()
