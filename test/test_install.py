"""The package as a robot integrator installs it: colcon-built (not symlinked) into a prefix
of its own, every node its own process started from ``install/lib/perception/``, under a
namespace with the shipped parameter file, as ``ros2 launch`` starts them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from perception_nodes.eval.processes import NodeProcess

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    """``colcon build`` of this package into a temporary workspace; its install prefix."""
    if not COLCON.exists():  # requirements.txt installs colcon; a missing one is a defect
        pytest.fail(f"colcon is not installed beside {sys.executable}")
    ws = tmp_path_factory.mktemp("ws")
    (ws / "src").mkdir()
    (ws / "src" / "perception").symlink_to(ROOT)
    env = {**os.environ, "COLCON_LOG_PATH": str(ws / "log")}
    result = subprocess.run([str(COLCON), "build", "--base-paths", "src", "--build-base",
                             "build", "--install-base", "install"], cwd=ws, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prefix = ws / "install" / "perception"
    assert (prefix / "share" / "perception" / "models" / "manifest.yaml").is_file()
    assert (prefix / "share" / "perception" / "launch" / "bringup.launch.py").is_file()
    return prefix


def _env(prefix: Path, sourced: bool) -> dict[str, str]:
    """What sourcing ``install/setup.bash`` gives a shell (or, unsourced, only the Python
    path), without this source tree's editable install mattering."""
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = {k: v for k, v in os.environ.items() if k != "AMENT_PREFIX_PATH"}
    env["PYTHONPATH"] = str(site)
    if sourced:
        env["AMENT_PREFIX_PATH"] = str(prefix)
    return env


def _start(prefix: Path, node: str, args: list[str], sourced: bool, cwd: Path) -> NodeProcess:
    """``install/lib/perception/NODE --ros-args ARGS``, as launch runs it."""
    exe = prefix / "lib" / "perception" / node
    assert exe.is_file(), f"no executable {exe}"
    return NodeProcess([str(exe), "--ros-args", *args], env=_env(prefix, sourced), cwd=cwd)


@pytest.mark.parametrize("sourced", [True, False], ids=["sourced", "unsourced"])
def test_an_installed_node_loads_its_model_from_the_share_directory(install, tmp_path,
                                                                    sourced):
    node = _start(install, "segmentation", [], sourced, tmp_path)
    node.wait_for("QoS:", timeout=90)
    code = node.stop()
    out = node.output
    models = install / "share" / "perception" / "models"
    assert f"model latent_segmenter ({models / 'latent_segmenter.onnx'})" in out, out
    assert code == 0 and "Traceback" not in node.output, node.output  # clean shutdown


def _get_parameters(probe: Node, node: str, names: list[str]) -> dict:
    client = probe.create_client(GetParameters, f"{node}/get_parameters")
    assert client.wait_for_service(timeout_sec=60), f"{node} never came up"
    executor = SingleThreadedExecutor(context=probe.context)
    executor.add_node(probe)
    # a request sent before the service has matched this client's reply reader can be lost
    # (volatile DDS); a node loading its model answers late: ask again, 3 x 30 s
    for _ in range(3):
        future = client.call_async(GetParameters.Request(names=names))
        executor.spin_until_future_complete(future, timeout_sec=30)
        if future.done() and future.result() is not None:
            break
    executor.remove_node(probe)
    assert future.result() is not None, f"{node} never answered get_parameters"
    values = future.result().values
    probe.destroy_client(client)
    return {n: getattr(v, {1: "bool_value", 2: "integer_value", 3: "double_value",
                           4: "string_value"}[v.type]) for n, v in zip(names, values, strict=True)}


def test_the_shipped_config_applies_under_a_namespace(install, tmp_path, ros_context):
    config = install / "share" / "perception" / "config" / "perception.yaml"
    procs = [_start(install, name, ["-r", f"__node:={name}", "-r", "__ns:=/cell1",
                                    "--params-file", str(config)], True, tmp_path)
             for name in ("pick_client", "segmentation", "grasp_regions")]
    probe = Node("param_probe", context=ros_context)
    try:
        assert _get_parameters(probe, "/cell1/pick_client", ["policy", "period_s"]) == {
            "policy": "grasp_regions", "period_s": 2.5}
        assert _get_parameters(probe, "/cell1/segmentation", ["max_fps", "mode"]) == {
            "max_fps": 5.0, "mode": "confidence_mask"}
        assert _get_parameters(probe, "/cell1/grasp_regions", ["stride_px"]) == {
            "stride_px": 2}
        end = time.monotonic() + 30
        topics: set[str] = set()
        while time.monotonic() < end and "/cell1/grasp/candidates" not in topics:
            topics = {name for name, _ in probe.get_topic_names_and_types()}
            time.sleep(0.2)
        assert {"/cell1/camera/color/image_raw", "/cell1/grasp/candidates",
                "/cell1/segmentation/sample_labels"} <= topics
    finally:
        probe.destroy_node()
        codes = [p.stop() for p in procs]
    for code, p in zip(codes, procs, strict=True):
        assert code == 0 and "Traceback" not in p.output, p.output


def test_package_xml_lists_the_python_dependencies_the_nodes_import():
    xml = (ROOT / "package.xml").read_text()
    for key in ("python3-numpy", "python3-opencv", "python3-yaml", "python3-scipy",
                "python3-onnxruntime-pip", "python3-pybullet-pip", "python3-rosbags-pip"):
        assert f"<exec_depend>{key}</exec_depend>" in xml, key
