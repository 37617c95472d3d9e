"""Train the superpixel instance model of superpixel one-shot and export it to ONNX.

    perception train-superpixel --preset default --out runs/train/superpixel
    perception train-superpixel --preset smoke --out /tmp/sp      # what the tests run

Targets follow Sec. III-D: the image's grid-preserving superpixels (cell = the output
stride) give each grid element the label at its superpixel's centre of mass; the centre
target is each instance's most interior grid element.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from perception_nodes.core.grid_slic import grid_slic, superpixel_targets
from perception_nodes.core.instance_encoding import instance_centres
from perception_nodes.learning.data import SceneDataset
from perception_nodes.learning.engine import (
    add_scene_input_args,
    fit,
    run_config,
    save_checkpoint,
    start_run,
    training_parser,
    write_summary,
)
from perception_nodes.learning.export import export_checked
from perception_nodes.learning.model import CHANNELS, STRIDE
from perception_nodes.learning.superpixel_model import (
    DELTA_R,
    GAMMA_REG,
    GridExport,
    SuperpixelSegmenter,
    centre_focal_loss,
    embedding_loss,
    semantic_loss,
)
from perception_nodes.sim.dataset import generate

PRESETS = {
    "smoke": {"height": 48, "width_px": 64, "steps": 3, "batch": 2, "scenes": 4, "lr": 2e-3},
    "default": {"height": 240, "width_px": 320, "steps": 1600, "batch": 8, "scenes": 1200,
                "lr": 2e-3},
}


def grid_targets(rgb: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Grid targets of one ``(h, w)`` image: ``instance_ids (h/4, w/4) int64`` (superpixel
    centre-of-mass labels), ``semantic`` (0 background, 1 item) and ``centres`` (1 at each
    instance's most interior element)."""
    grid = (-(-labels.shape[0] // STRIDE), -(-labels.shape[1] // STRIDE))
    ids = superpixel_targets(labels, grid_slic(rgb, STRIDE), grid).astype(np.int64)
    centres = np.zeros(grid, np.float32)
    for r, c in instance_centres(ids).values():
        centres[r, c] = 1.0
    return {"instance_ids": ids, "semantic": (ids > 0).astype(np.int64), "centres": centres}


class SuperpixelScenes(SceneDataset):
    """Scenes of one split folder with superpixel one-shot's grid targets, augmented as the
    latent model's (``SceneDataset``)."""

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, labels, height = self.scene_rgbh(index)
        return {"image": self.image(rgb, height),
                **{k: torch.from_numpy(v) for k, v in grid_targets(rgb, labels).items()}}


def losses(model: SuperpixelSegmenter, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """superpixel one-shot's three task losses and their sum (alpha = beta = 1, gamma = 0.001)."""
    out = model(batch["image"])
    parts = {"semantic": semantic_loss(out["semantic"], batch["semantic"]),
             "centre": centre_focal_loss(out["centre"][:, 0], batch["centres"])}
    parts.update(embedding_loss(out["embedding"], batch["instance_ids"], batch["centres"]))
    parts["total"] = (parts["semantic"] + parts["centre"] + parts["attract"]
                      + parts["repel"] / DELTA_R + GAMMA_REG * parts["reg"])
    return parts


def build_parser() -> argparse.ArgumentParser:
    ap = training_parser("perception train-superpixel", __doc__, PRESETS, "data/sim", 64,
                         "scenes", "training scenes")
    add_scene_input_args(ap)
    return ap


def main(argv: list[str] | None = None) -> dict:
    """Train, checkpoint, export; returns a summary (also written to OUT/summary.json)."""
    cfg = run_config(build_parser().parse_args(argv), PRESETS, "scenes", model="superpixel")
    out = start_run(cfg)
    size = (cfg["height"], cfg["width_px"])
    folder = Path(cfg["data"]) / cfg["split"]
    if cfg["preset"] == "smoke" and not any(folder.glob("scene_*.npz")):
        generate(cfg["data"], cfg["split"], cfg["scenes"], width=size[1], height=size[0])
    data = SuperpixelScenes(folder, size, augment=True, seed=cfg["seed"],
                            inputs=cfg.get("inputs", "rgb"),
                            augmentation=cfg.get("augment", "basic"))
    data.paths = data.paths[: cfg["scenes"]]
    model = SuperpixelSegmenter(width=cfg["width"],
                                in_channels=CHANNELS[cfg.get("inputs", "rgb")]).train()
    log, steps, seconds = fit(model, data, cfg, lambda m, batch, step: losses(m, batch))
    save_checkpoint(model, cfg, size, steps, out)
    diff = export_grid_model(model.eval(), size, out / "model.onnx")
    return write_summary(out, cfg, steps, seconds, diff, log)

def export_grid_model(model: SuperpixelSegmenter, size: tuple[int, int], path: Path) -> float:
    """ONNX (``image (1, C, h, w)`` -> ``out (1, 34, h/4, w/4)``), then one ONNX Runtime
    check against torch; returns the largest absolute difference."""
    image = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (1, model.in_channels, *size)).astype(np.float32))
    return export_checked(GridExport(model), {"image": image}, path)


if __name__ == "__main__":
    main()
