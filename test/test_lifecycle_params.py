"""Every node keeps its lifecycle and parameter contract: one set of entities per configure,
silent publishers while inactive, parameters validated and applied at run time."""

from pathlib import Path

import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.lifecycle import LifecyclePublisher
from rclpy.parameter import Parameter

from perception_nodes.registry import NODES, node_class


def _overrides(name: str, tmp_path: Path, smoke_models: Path) -> list[Parameter]:
    extra = {"grasp_capture": {"dataset_dir": str(tmp_path / "grasps")},
             "sim_cell": {"width": 64, "height": 48, "min_items": 1, "max_items": 2},
             "segmentation": {"models_dir": str(smoke_models)},
             "anomaly": {"models_dir": str(smoke_models)},
             "depth": {"models_dir": str(smoke_models)}}.get(name, {})
    return [Parameter("autostart", value=False)] + [
        Parameter(k, value=v) for k, v in extra.items()]


@pytest.mark.parametrize("name", sorted(NODES))
def test_configure_cleanup_configure_gives_one_set_of_entities(ros_context, tmp_path,
                                                               smoke_models, name):
    node = node_class(name)(context=ros_context,
                            parameter_overrides=_overrides(name, tmp_path, smoke_models))
    assert not node.configured and not node.active
    bare = node.io_counts()
    node.trigger_configure()
    node.trigger_activate()
    first = node.io_counts()
    assert first != bare, "configure made nothing"
    owned = [entity for kind, entity in node._io if kind == "lifecycle_publisher"]
    assert len(owned) == first["publishers"] - bare["publishers"]
    assert owned or name == "grasp_capture"  # it only listens and writes to disk
    assert all(isinstance(p, LifecyclePublisher) for p in owned)
    assert all(p.is_activated for p in owned)
    node.trigger_deactivate()
    assert not node.active and not any(p.is_activated for p in owned)  # silent when inactive
    node.trigger_cleanup()
    assert node.io_counts() == bare and not node.configured
    node.trigger_configure()
    node.trigger_activate()
    assert node.io_counts() == first
    node.trigger_shutdown()
    assert node.io_counts() == bare
    node.destroy_node()


def _grasp_regions(ros_context):
    return node_class("grasp_regions")(context=ros_context)


def test_a_set_parameter_is_applied_at_run_time(ros_context):
    node = _grasp_regions(ros_context)
    assert node.grasp_params.max_risk == 0.5
    result = node.set_parameters([Parameter("max_risk", value=0.1)])[0]
    assert result.successful
    assert node.params["max_risk"] == 0.1 and node.grasp_params.max_risk == 0.1
    before = node.io_counts()
    assert node.set_parameters([Parameter("depth_topic",
                                          value="camera/depth_mono/image_raw")])[0].successful
    topics = {s.topic_name for s in node.subscriptions}
    assert "/camera/depth_mono/image_raw" in topics and "/camera/depth/image_raw" not in topics
    assert node.io_counts() == before and node.active  # rebuilt, still one set, still active
    node.destroy_node()


@pytest.mark.parametrize("param, value, reason", [
    ("max_risk", 1.5, "out of range"),
    ("depth_topic", "camera/elsewhere", "not one of"),
    ("cup_offsets_m", "0,0; nonsense", ""),
    ("qos_publish", "fastest", "not one of"),
])
def test_an_invalid_value_is_rejected_with_the_reason_and_nothing_changes(
        ros_context, param, value, reason):
    node = _grasp_regions(ros_context)
    before = dict(node.params)
    layout = node.layout
    result = node.set_parameters([Parameter(param, value=value)])[0]
    assert not result.successful and reason in result.reason and result.reason
    assert node.params == before and node.get_parameter(param).value == before[param]
    assert node.layout == layout
    node.destroy_node()


def test_autostart_is_read_only_and_a_refused_model_keeps_the_old_one_serving(
        ros_context, smoke_models):
    node = node_class("segmentation")(context=ros_context, parameter_overrides=[
        Parameter("models_dir", value=str(smoke_models)), Parameter("mode", value="prior_mean")])
    assert node.active
    assert not node.set_parameters([Parameter("autostart", value=False)])[0].successful
    runner = node.runner
    result = node.set_parameters([Parameter("model", value="no_such_model")])[0]
    assert not result.successful and "no_such_model" in result.reason
    assert node.params["model"] == "latent_segmenter" and node.active
    assert node.runner is runner and node.runner.mode == "prior_mean"  # kept serving
    assert node.set_parameters([Parameter("mode", value="union_nms")])[0].successful
    assert node.runner.mode == "union_nms" and node.active
    node.destroy_node()


def test_every_parameter_has_a_description_and_enforced_choices(ros_context):
    node = _grasp_regions(ros_context)
    for name, spec in node.param_specs.items():
        descriptor = node.describe_parameter(name)
        assert descriptor.description
        if spec.choices:
            assert str(list(spec.choices)) in descriptor.additional_constraints
        if descriptor.type == ParameterType.PARAMETER_DOUBLE and spec.min is not None:
            assert descriptor.floating_point_range[0].to_value == spec.max
    node.destroy_node()
