"""ONNX export of a trained checkpoint, followed by one ONNX Runtime check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perception_nodes.inference.onnx_model import OnnxModel
from perception_nodes.learning.model import CHANNELS, LatentSegmenter, SamplingExport

OPSET = 17


def load_checkpoint(path: Path | str) -> tuple[LatentSegmenter, dict]:
    """The model of a checkpoint and the checkpoint's dict (args, input size, step)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    args = ckpt["args"]
    model = LatentSegmenter(latent_dim=args["latent_dim"], width=args["width"],
                            in_channels=CHANNELS[args.get("inputs", "rgb")])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def export_onnx(model: LatentSegmenter, input_size: tuple[int, int], path: Path | str,
                check_samples: int = 4, tolerance: float = 1e-3) -> float:
    """Export ``image (1, C, H, W)`` (C: the model's input channels), ``eps (K, d)`` ->
    ``out (K, 4, H/4, W/4)`` with K dynamic, then run the file in ONNX Runtime on a seeded
    image and compare with torch.

    Returns the largest absolute difference; raises RuntimeError above ``tolerance``.
    """
    model = model.eval()
    wrapper = SamplingExport(model).eval()
    h, w = input_size
    d = max(1, model.latent_dim)
    image = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (1, model.in_channels, h, w), dtype=np.float32))
    eps = torch.from_numpy(np.random.default_rng(1).standard_normal((check_samples, d),
                                                                    dtype=np.float32))
    return export_checked(wrapper, {"image": image, "eps": eps}, path, tolerance,
                          {"eps": {0: "K"}, "out": {0: "K"}})


def export_checked(wrapper: torch.nn.Module, feeds: dict[str, torch.Tensor], path: Path | str,
                   tolerance: float = 1e-3, dynamic_axes: dict | None = None) -> float:
    """Export ``wrapper`` (inputs named as ``feeds``, in order; one output ``out``) to
    ``path`` via a temporary file, run that in ONNX Runtime on ``feeds`` and compare with
    torch (``check_onnx``). Returns the largest absolute difference."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    args = tuple(feeds.values())
    torch.onnx.export(wrapper.eval(), args, str(tmp), input_names=list(feeds),
                      output_names=["out"], dynamic_axes=dynamic_axes, opset_version=OPSET,
                      dynamo=False)
    with torch.no_grad():
        expected = wrapper(*args).numpy()
    return check_onnx(tmp, {k: v.numpy() for k, v in feeds.items()}, expected, tolerance,
                      path)


def check_onnx(tmp: Path, feeds: dict[str, np.ndarray], expected: np.ndarray,
               tolerance: float = 1e-3, final: Path | None = None) -> float:
    """Run an exported file in ONNX Runtime and compare ``out`` with torch's; the file moves
    to ``final`` when it agrees and is deleted when it does not.

    Returns the largest absolute difference; raises RuntimeError above ``tolerance``.
    """
    got = OnnxModel(tmp, providers="cpu").run(feeds)
    diff = float(np.abs(got["out"] - expected).max())
    if diff > tolerance:
        Path(tmp).unlink()
        raise RuntimeError(f"ONNX Runtime differs from torch by {diff} (> {tolerance})")
    if final is not None:
        Path(tmp).replace(final)
    return diff
