"""`perception eval depth` end to end on one sweep and one scene with a smoke-trained model."""

import json

import numpy as np

from perception_nodes.core.mono_depth import METRICS
from perception_nodes.eval.depth_eval import CONSTANT, run_eval


def test_depth_eval_writes_every_table(smoke_models, tmp_path):
    model = str(smoke_models / "mono_depth" / "model.onnx")
    report = run_eval(str(tmp_path / "data"), {"smoke": model}, sequences=1, scenes=1,
                      out_dir=str(tmp_path / "out"))
    assert set(report["table1"]) == {"smoke", CONSTANT}
    for row in report["table1"].values():
        assert set(row) == set(METRICS) and all(np.isfinite(v) for v in row.values())
    scale = report["floor_plane_scale"]["smoke"]
    assert 0 <= scale["scale_error_median"] and set(scale["floor_plane"]) == set(METRICS)
    assert set(report["stereo_motorcycle"]) == {"smoke", CONSTANT}
    # the constant prediction, median-scaled, is exact where the scene is flat: never worse
    # than everything wrong
    assert report["table1"][CONSTANT]["a3"] > 0.5
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["sequences"] == 1
    text = (tmp_path / "out" / "tables.md").read_text()
    assert "Table I" in text and "floor-plane scale" in text and "stereo_motorcycle" in text
