"""Test isolation: a DDS domain of this run's own, discovery on localhost only."""

import os

# Before rclpy is imported anywhere: rcl reads these at init, and subprocesses inherit them.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import pytest  # noqa: E402
import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402


@pytest.fixture
def ros_context():
    """An initialised rclpy context of the test's own, shut down afterwards."""
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture(scope="session")
def smoke_models(tmp_path_factory):
    """A models folder with smoke-trained latent, baseline, superpixel (each reading colour,
    and as NAME_rgbh colour and height) and prompt segmenters (the colour latent one also
    as the anomaly segmenter), a smoke-trained monocular depth model and a manifest."""
    import yaml

    from perception_nodes.inference.onnx_model import sha256_of
    from perception_nodes.learning.train import main as train

    root = tmp_path_factory.mktemp("smoke_models")
    entries = {}
    rgbh = ["--inputs", "rgbh", "--augment", "full"]  # what the shipped models read
    for name, extra in (("latent_segmenter", []), ("baseline_segmenter", ["--baseline"]),
                        ("latent_segmenter_rgbh", rgbh),
                        ("baseline_segmenter_rgbh", ["--baseline", *rgbh])):
        train(["--preset", "smoke", "--data", str(root / "data"), "--out", str(root / name),
               *extra])
        path = root / name / "model.onnx"
        entries[name] = {"file": f"{name}/model.onnx", "sha256": sha256_of(path)}
    from perception_nodes.learning.superpixel_train import main as train_superpixel

    train_superpixel(["--preset", "smoke", "--data", str(root / "data"), "--out",
                      str(root / "superpixel_segmenter")])
    train_superpixel(["--preset", "smoke", "--data", str(root / "data"), "--out",
                      str(root / "superpixel_segmenter_rgbh"), *rgbh])
    for name in ("superpixel_segmenter", "superpixel_segmenter_rgbh"):
        entries[name] = {"file": f"{name}/model.onnx",
                         "sha256": sha256_of(root / name / "model.onnx")}
    from perception_nodes.learning.prompt_seg_train import main as train_prompt_seg

    train_prompt_seg(["--preset", "smoke", "--data", str(root / "data"), "--out",
                      str(root / "prompt_segmenter")])
    path = root / "prompt_segmenter" / "model.onnx"
    entries["prompt_segmenter"] = {"file": "prompt_segmenter/model.onnx",
                                   "sha256": sha256_of(path)}
    entries["anomaly_segmenter"] = entries["latent_segmenter"]  # same architecture
    from perception_nodes.learning.depth_train import main as train_depth

    train_depth(["--preset", "smoke", "--data", str(root / "data"), "--out",
                 str(root / "mono_depth")])
    entries["mono_depth"] = {"file": "mono_depth/model.onnx",
                             "sha256": sha256_of(root / "mono_depth" / "model.onnx")}
    (root / "manifest.yaml").write_text(yaml.safe_dump({"models": entries}))
    return root
