"""Model versions swapped live: the segmentation node switches to a new version of its model
when the parameter is set (hash-checked, loaded beside the serving one, swapped between
frames: every frame sent gets its outputs), refuses a corrupt file and keeps serving, and a
rollback to the previous version restores its outputs exactly."""


import numpy as np
import onnx
import pytest
from hostile import HostileRig
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from perception_nodes.inference.onnx_model import sha256_of
from perception_nodes.learning.model_store import add_version, versions
from perception_nodes.nodes.segmentation import SegmentationNode
from perception_nodes.ros.image_conversion import image_to_numpy, numpy_to_image


def _perturbed(src, dst) -> None:
    """Another version of the model: its first floating initializer scaled by 1.5."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        arr = onnx.numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 16:
            init.CopyFrom(onnx.numpy_helper.from_array(arr * 1.5, init.name))
            break
    onnx.save(model, str(dst))


def test_versions_swap_live_refuse_a_corrupt_file_and_roll_back(ros_context, smoke_models,
                                                                 tmp_path):
    store = tmp_path / "store"
    v1 = add_version(store, "latent", smoke_models / "latent_segmenter" / "model.onnx")
    _perturbed(smoke_models / "latent_segmenter" / "model.onnx", tmp_path / "v2.onnx")
    v2 = add_version(store, "latent", tmp_path / "v2.onnx")
    v3 = add_version(store, "latent", tmp_path / "v2.onnx")
    assert versions(store, "latent") == ["latent@v1", "latent@v2", "latent@v3"]
    with pytest.raises(FileExistsError):  # a version's folder is never overwritten
        (store / "latent" / "v4").mkdir(parents=True)
        add_version(store, "latent", tmp_path / "v2.onnx")
    corrupt = store / "latent" / "v3" / "model.onnx"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt.write_bytes(bytes(data))

    node = SegmentationNode(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(store)), Parameter("mode", value="prior_mean"),
        Parameter("model", value=v1), Parameter("threads", value=1),
        Parameter("publish_overlay", value=False)])
    rig = HostileRig(ros_context, node, {"camera/color/image_raw": Image}, qos=50)
    got: list = []
    rig.probe.create_subscription(Image, "segmentation/instance_labels", got.append, 50)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)

    def frames(first: int, count: int) -> None:
        rig.stamp = first - 1  # send() stamps the next second
        for _ in range(count):
            rig.send({"camera/color/image_raw": numpy_to_image(rgb, "rgb8")})
            rig.executor.spin_once(timeout_sec=0.02)

    def wait_for(count: int) -> None:
        rig.spin_until(lambda: len(got) >= count, 60.0)

    try:
        assert node.health.info["model_sha256"] == sha256_of(store / "latent/v1/model.onnx")[:16]
        frames(1, 3)
        result = node.set_parameters([Parameter("model", value=v2)])[0]  # mid-stream
        frames(4, 3)
        wait_for(6)
        assert result.successful, result.reason
        assert [m.header.stamp.sec for m in got] == [1, 2, 3, 4, 5, 6]  # none dropped
        assert node.health.info["model_sha256"] == sha256_of(tmp_path / "v2.onnx")[:16]
        assert node.health.counters["model_swaps"] == 1
        result = node.set_parameters([Parameter("model", value=v3)])[0]
        assert not result.successful and "sha256" in result.reason
        assert node.get_parameter("model").value == v2  # still serving v2
        frames(7, 1)
        wait_for(7)
        assert node.health.info["model_sha256"] == sha256_of(tmp_path / "v2.onnx")[:16]
        assert node.set_parameters([Parameter("model", value=v1)])[0].successful  # rollback
        frames(8, 1)
        wait_for(8)
    finally:
        rig.close()
    first, rolled_back = image_to_numpy(got[0]), image_to_numpy(got[7])
    np.testing.assert_array_equal(rolled_back, first)  # v1's outputs again, exactly
