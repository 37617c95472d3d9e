"""`perception eval bag` on the committed sim bag (26 frames with ground truth and two
recorded picks): two configurations, the metrics checked against the dataset evaluator on
the same frames, and the annotated bag read back with the official MCAP reader and rosbags."""

from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from perception_nodes.core.confidence_masks import labels_to_masks
from perception_nodes.core.grasp_regions import WorkspaceMask
from perception_nodes.core.instance_metrics import InstanceEvaluator
from perception_nodes.eval.bag_eval import (
    BagTopics,
    evaluate_bag,
    markdown,
    parse_configs,
    read_frames,
    write_outputs,
)
from perception_nodes.inference.geometric import GeometricSegmenter
from perception_nodes.ros.bags import deserialize, read_bag
from perception_nodes.ros.image_conversion import image_to_numpy

BAG = Path(__file__).parent / "data" / "sim_cell_bag"


def test_configs_parse_and_refuse_what_is_not_a_configuration():
    cfgs = parse_configs("geo=mode:geometric,max_risk:=0.2;cm=mode:confidence_mask,"
                         "model:latent_segmenter,num_samples:=4")
    assert [c.name for c in cfgs] == ["geo", "cm"]
    assert cfgs[0].params == {"max_risk": 0.2} and cfgs[1].model == "latent_segmenter"
    for bad in ("geo=", "geo=mode:geometric,wat:=1", "a=mode:x;a=mode:y", "=mode:x",
                "geo=mode:geometric,oops", ""):
        with pytest.raises(ValueError):
            parse_configs(bad)


def test_two_configurations_on_the_committed_bag(tmp_path, smoke_models):
    configs = parse_configs(f"geo=mode:geometric;base=mode:baseline,model:"
                            f"{smoke_models / 'baseline_segmenter_rgbh' / 'model.onnx'}")
    report = evaluate_bag(BAG, configs, annotated=tmp_path / "annotated", progress=False)
    write_outputs(report, tmp_path / "out")
    assert report["frames"] == 26 and report["ground_truth"]
    assert {"geo~base", "base~geo"} <= set(report["agreement_iou"])
    assert report["cell_picks"] == {"picks": 2, "success": 2, "double": 0, "empty": 0}
    geo = report["configs"]["geo"]
    assert geo["same_item_as_cell"]["picks"] == 2
    assert 0.0 <= geo["frames_with_candidate"] <= 1.0
    assert len(report["per_frame"]["base"]["latency_ms"]) == 26
    # the dataset evaluator on the same frames gives the same geometric scores
    frames, _, _ = read_frames(BAG, BagTopics())
    segmenter = GeometricSegmenter(None, WorkspaceMask(np.zeros((0, 2))))
    ev = InstanceEvaluator()
    first = None
    for frame in frames:
        out = segmenter(frame.depth, frame.intrinsics)
        first = out.labels if first is None else first
        ev.add(labels_to_masks(out.labels), out.scores, labels_to_masks(frame.labels))
    assert geo["mAP"] == round(100 * ev.mean_ap(), 2)
    assert geo["AR_IoG"] == round(100 * ev.ar_iog(), 2)
    assert "| geo | geometric |" in markdown(report)
    assert (tmp_path / "out" / "plots.png").stat().st_size > 0
    # the annotated bag: the recording plus eval/NAME/... with the recorded stamps
    with open(next((tmp_path / "annotated").glob("*.mcap")), "rb") as f:
        summary = make_reader(f).get_summary()
    topics = {c.topic: summary.statistics.channel_message_counts[i]
              for i, c in summary.channels.items()}
    assert topics["/eval/geo/instance_labels"] == 26 == topics["/eval/base/candidates"]
    assert topics["/camera/color/image_raw"] == 26
    labels = [deserialize(raw, t) for _, t, _, raw in
              read_bag(tmp_path / "annotated", ["/eval/geo/instance_labels"])]
    np.testing.assert_array_equal(image_to_numpy(labels[0]), first)
    stamp = labels[0].header.stamp
    assert stamp.sec * 1_000_000_000 + stamp.nanosec == frames[0].stamp_ns


def test_mean_best_iou_from_the_joint_histogram_equals_mask_by_mask():
    from perception_nodes.core.instance_metrics import best_iou, mean_best_iou

    rng = np.random.default_rng(0)
    for _ in range(10):
        a = (rng.integers(0, 5, (30, 40)) * rng.integers(0, 2, (30, 40))).astype(np.uint16)
        b = rng.integers(0, 7, (30, 40)).astype(np.uint16)
        b[b == 3] = 900  # sparse label ids
        ref = best_iou(labels_to_masks(a), labels_to_masks(b)).mean()
        assert mean_best_iou(a, b) == pytest.approx(float(ref), abs=1e-6)
    assert np.isnan(mean_best_iou(np.zeros((2, 2), np.uint16), a[:2, :2]))
    assert mean_best_iou(np.ones((2, 2), np.uint16), np.zeros((2, 2), np.uint16)) == 0.0


def test_topics_a_bag_does_not_have_read_as_no_messages():
    assert list(read_bag(BAG, ["/no/such/topic"])) == []
