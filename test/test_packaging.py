"""The package is consistent: nodes, entry points, config, launch file, package.xml."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from perception_nodes.bringup import load_config, parse_overrides
from perception_nodes.registry import NODES, node_class

ROOT = Path(__file__).resolve().parent.parent


def test_every_node_has_an_entry_point_and_the_config_names_known_nodes():
    tree = ast.parse((ROOT / "setup.py").read_text())
    declared = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                    if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "NODES")
    assert set(declared) == set(NODES)
    names, params = load_config(ROOT / "config" / "perception.yaml")
    assert names and set(names) <= set(NODES)
    for name in NODES:
        cls = node_class(name)
        known = {p.name for p in cls.PARAMS}
        assert set(params.get(name, {})) - known <= {"qos_subscribe", "qos_publish",
                                                     "autostart", "max_fps"}


def test_package_xml_declares_every_ros_package_imported():
    xml = (ROOT / "package.xml").read_text()
    assert '<package format="3">' in xml and "<build_type>ament_python</build_type>" in xml
    deps = set(re.findall(r"<exec_depend>([\w_]+)</exec_depend>", xml))
    imported = set()
    for path in (ROOT / "perception_nodes").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
    ros = {m for m in imported if m.endswith(("_msgs", "_srvs", "_interfaces")) or m == "rclpy"}
    assert ros and ros <= deps, ros - deps


def test_launch_file_starts_the_configured_nodes_from_the_shared_config():
    source = (ROOT / "launch" / "bringup.launch.py").read_text()
    ast.parse(source)
    assert "generate_launch_description" in source
    assert 'package="perception"' in source and "perception_bringup" in source
    assert (ROOT / "resource" / "perception").exists()


def test_overrides_parse_as_yaml_values():
    assert parse_overrides(["sim_cell.seed:=4", "camera_ingest.source:=video"]) == {
        "sim_cell": {"seed": 4}, "camera_ingest": {"source": "video"}}


def test_bench_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "perception_nodes.cli", "bench", "--json",
                          "--only", "image_conversion,transport"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["results"]["image_conversion"]["rgb8_to_msg"]["fps"] > 0
    transport = result["results"]["transport"]
    for size in ("640x480", "1280x720"):
        assert transport[size]["received"] > 1 and transport[size]["fps"] > 0
        assert transport[size]["latency_p99_ms"] >= transport[size]["latency_p50_ms"]


def test_docs_document_every_parameter_per_node_and_the_readme_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    manual = (ROOT / "docs" / "nodes.md").read_text()
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^#|\Z)", manual, re.M | re.S))
    for name in NODES:
        for param in node_class(name).PARAMS:
            assert f"`{param.name}`" in sections[name], (name, param.name)
    for topic in ("camera/color/image_raw", "arm/pick_request", "arm/pick_outcome",
                  "arm/suction_gauge", "sim/instance_labels", "/diagnostics"):
        assert f"`{topic}`" in manual, topic
