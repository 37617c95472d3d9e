"""Static int8 quantization of an exported model with ONNX Runtime (QDQ, per-channel
weights), calibrated on training scenes; followed by one ONNX Runtime check.

    perception quantize --run runs/train/superpixel --out runs/train/superpixel_int8

The output folder looks like a training run (``model.onnx``, ``summary.json`` with a
``quantization`` entry), so ``perception publish-model`` takes it as it is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from perception_nodes.core.instance_encoding import network_input
from perception_nodes.inference.onnx_model import OnnxModel
from perception_nodes.sim.dataset import load_scene, scene_height


def _feeds(path: Path, size: tuple[int, int], channels: int) -> dict[str, np.ndarray]:
    scene = load_scene(path)
    height = scene_height(scene) if channels == 4 else None
    return {"image": network_input(scene["rgb"], height, size, channels)}


class _Scenes(CalibrationDataReader):
    def __init__(self, paths: list[Path], size: tuple[int, int], channels: int) -> None:
        self.feeds = iter([_feeds(p, size, channels) for p in paths])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def quantize_run(run_dir: Path, out_dir: Path, data_root: Path, scenes: int = 32,
                 split: str = "train") -> dict:
    """Quantize ``run_dir/model.onnx`` (input ``image`` only) into ``out_dir``; returns the
    quantization record (calibration scenes, largest output difference on one of them)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = run_dir / "model.onnx"
    shape = OnnxModel(source, "cpu").inputs["image"][0]
    channels, size = int(shape[1]), (int(shape[2]), int(shape[3]))
    paths = sorted((Path(data_root) / split).glob("scene_*.npz"))[:scenes]
    if len(paths) < scenes:
        raise FileNotFoundError(f"{scenes} training scenes needed in {data_root}/{split}")
    pre, tmp = out_dir / "pre.onnx", out_dir / "model.onnx.tmp"
    quant_pre_process(str(source), str(pre))
    quantize_static(str(pre), str(tmp), _Scenes(paths, size, channels),
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    pre.unlink()
    feeds = _feeds(paths[0], size, channels)
    diff = float(np.abs(OnnxModel(tmp, "cpu").run(feeds)["out"] -
                        OnnxModel(source, "cpu").run(feeds)["out"]).max())
    tmp.replace(out_dir / "model.onnx")
    record = {"method": "ONNX Runtime quantize_static, QDQ, uint8 activations, int8 "
              "per-channel weights", "calibration": f"train scenes 0-{scenes - 1}",
              "source": str(source), "max_abs_diff_on_a_calibration_scene": diff}
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["quantization"] = record
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return record


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="perception quantize", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a training run folder with model.onnx")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="data/sim")
    ap.add_argument("--scenes", type=int, default=32, help="calibration scenes")
    ap.add_argument("--split", default="train", help="calibration scenes' split")
    args = ap.parse_args(argv)
    record = quantize_run(Path(args.run), Path(args.out), Path(args.data), args.scenes,
                          args.split)
    print(json.dumps(record))
    return record
