"""ONNX Runtime wrapper on a tiny model built here (no trained weights, no network)."""

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from perception_nodes.inference.onnx_model import (
    ModelError,
    OnnxModel,
    resolve_model,
    select_providers,
    sha256_of,
)


@pytest.fixture
def relu_model(tmp_path):
    """y = relu(x + 1) for x of shape (N, 3, 4, 4), float32."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["s"]),
                               helper.make_node("Relu", ["s"], ["y"])],
                              "relu_plus_one", [x], [y], initializer=[one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    return path


def test_runs_with_cpu_and_checks_inputs(relu_model):
    model = OnnxModel(relu_model, providers="cpu")
    assert model.provider == "CPUExecutionProvider"
    x = np.linspace(-2, 2, 2 * 48, dtype=np.float32).reshape(2, 3, 4, 4)
    np.testing.assert_allclose(model.run({"x": x})["y"], np.maximum(x + 1, 0))
    empty = np.zeros((0, 3, 4, 4), np.float32)
    assert model.run({"x": empty})["y"].shape == (0, 3, 4, 4)
    with pytest.raises(ModelError, match="NaN"):
        model.run({"x": np.full((1, 3, 4, 4), np.nan, np.float32)})
    with pytest.raises(ModelError, match="float64"):
        model.run({"x": x.astype(np.float64)})
    with pytest.raises(ModelError, match="shape"):
        model.run({"x": np.zeros((1, 3, 5, 4), np.float32)})
    with pytest.raises(ModelError, match="inputs"):
        model.run({"image": x})


def test_provider_selection():
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", gpu) == gpu
    assert select_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert select_providers("cuda", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ModelError, match="not available"):
        select_providers("tensorrt", ["CPUExecutionProvider"])
    with pytest.raises(ModelError, match="unknown provider"):
        select_providers("tpu", gpu)


def test_manifest_resolves_and_verifies_sha256(relu_model, tmp_path):
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump({"models": {"relu": {
        "file": relu_model.name, "sha256": sha256_of(relu_model), "card": "relu.md"}}}))
    assert resolve_model("relu", tmp_path) == relu_model
    with pytest.raises(ModelError, match="known: \\['relu'\\]"):
        resolve_model("segmentation", tmp_path)
    relu_model.write_bytes(relu_model.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        resolve_model("relu", tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        OnnxModel(tmp_path / "missing.onnx")


def test_a_manifest_cannot_point_outside_its_folder(relu_model, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name, file in (("up", f"../{relu_model.name}"), ("absolute", str(relu_model))):
        (models / "manifest.yaml").write_text(yaml.safe_dump({"models": {name: {
            "file": file, "sha256": sha256_of(relu_model)}}}))
        with pytest.raises(ModelError, match="outside"):
            resolve_model(name, models)
