"""Train the grasp segmentation model of grasp self-supervision (Sec. III-A) and export it to ONNX.

    perception train-grasp-seg --preset default --grasps 100 --out runs/train/grasp_seg_100
    perception train-grasp-seg --preset smoke --out /tmp/gs     # what the tests run

Labelled grasps come from `perception grasp-data` (successful single lifts only; the
labels are the sim's). The model sees the ``WINDOW_PX`` square around the active cups.
Augmentations (Sec. III-A: crops, resizes, blurs, colour): the window's position jittered,
a random resized crop, flips, Gaussian blur and colour gain/offset; ``--no-aug`` turns
them off (Grasp-100-NoAug).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from perception_nodes.core.grasp_segmentation import WINDOW_PX, grasp_input, grasp_window
from perception_nodes.learning.engine import (
    fit,
    load_weights,
    run_config,
    save_checkpoint,
    start_run,
    training_parser,
    write_summary,
)
from perception_nodes.learning.export import export_checked
from perception_nodes.learning.grasp_seg_model import GraspSegmenter, weighted_bce_sum
from perception_nodes.sim.grasp_episodes import (
    GraspEpisode,
    load_episodes,
    save_episodes,
    usable_grasps,
)

PRESETS = {
    "smoke": {"steps": 3, "batch": 2, "lr": 2e-3, "grasps": 2},
    "default": {"steps": 600, "batch": 8, "lr": 2e-3, "grasps": 100},
}


def window_sample(ep: GraspEpisode, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """Model input ``(10, s, s)`` and target ``(2, s, s)`` (visible, amodal) of one grasp,
    augmented when ``rng`` is given."""
    s = WINDOW_PX
    top, left = grasp_window(ep.grasp_mask, s)
    before, after = ep.before, ep.after
    planes = [ep.grasp_mask.astype(np.float32), ep.visible.astype(np.float32),
              ep.amodal.astype(np.float32)]
    if rng is not None:
        h, w = ep.grasp_mask.shape
        top = int(np.clip(top + rng.integers(-16, 17), 0, h - s))
        left = int(np.clip(left + rng.integers(-16, 17), 0, w - s))
    crop = (slice(top, top + s), slice(left, left + s))
    before, after = before[crop].copy(), after[crop].copy()
    planes = [q[crop].copy() for q in planes]
    if rng is not None:
        scale = rng.uniform(0.75, 1.0)  # random resized crop
        c = int(round(s * scale))
        y0, x0 = rng.integers(0, s - c + 1, 2)
        box = (slice(y0, y0 + c), slice(x0, x0 + c))

        def resize(img: np.ndarray, nearest: bool) -> np.ndarray:
            return cv2.resize(img[box], (s, s), interpolation=cv2.INTER_NEAREST if nearest
                              else cv2.INTER_LINEAR)

        before, after = resize(before, False), resize(after, False)
        planes = [resize(q, True) for q in planes]
        if rng.random() < 0.5:
            before, after, planes = before[:, ::-1], after[:, ::-1], [q[:, ::-1] for q in planes]
        if rng.random() < 0.5:
            before, after, planes = before[::-1], after[::-1], [q[::-1] for q in planes]
        if rng.random() < 0.3:
            sigma = rng.uniform(0.5, 1.5)
            before = cv2.GaussianBlur(np.ascontiguousarray(before), (0, 0), sigma)
            after = cv2.GaussianBlur(np.ascontiguousarray(after), (0, 0), sigma)
        gain, offset = rng.uniform(0.8, 1.2, 3), rng.uniform(-20, 20, 3)
        before = np.clip(before * gain + offset, 0, 255).astype(np.uint8)
        after = np.clip(after * gain * rng.uniform(0.95, 1.05) + offset, 0, 255).astype(
            np.uint8)
    x = grasp_input(np.ascontiguousarray(before), np.ascontiguousarray(after),
                    np.ascontiguousarray(planes[0]))
    y = np.stack([np.ascontiguousarray(planes[1]), np.ascontiguousarray(planes[2])])
    return {"input": x.astype(np.float32), "target": y.astype(np.float32)}


class GraspWindows(Dataset):
    """Labelled grasps as model windows; augmentation seeded by (seed, epoch, index)."""

    def __init__(self, episodes: list[GraspEpisode], augment: bool, seed: int) -> None:
        self.episodes, self.augment, self.seed, self.epoch = episodes, augment, seed, 0

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        return {k: torch.from_numpy(v) for k, v in
                window_sample(self.episodes[index], rng).items()}


def build_parser() -> argparse.ArgumentParser:
    ap = training_parser("perception train-grasp-seg", __doc__, PRESETS, "data/grasps_sim",
                         24, "grasps", "labelled grasps to train on")
    ap.add_argument("--no-aug", action="store_true", help="train without augmentation")
    ap.add_argument("--init", default=None, metavar="CHECKPOINT",
                    help="start from this checkpoint's weights (same --width)")
    return ap


def main(argv: list[str] | None = None) -> dict:
    """Train on the first ``grasps`` usable train grasps, checkpoint, export; returns the
    summary (also OUT/summary.json)."""
    args = build_parser().parse_args(argv)
    cfg = run_config(args, PRESETS, "grasps", augment=not args.no_aug,
                     model="grasp_segmentation", window=WINDOW_PX,
                     **({"init": args.init} if args.init else {}))
    out = start_run(cfg)
    folder = Path(cfg["data"]) / "train"
    if cfg["preset"] == "smoke" and not any(folder.glob("*.npz")):
        save_episodes(cfg["data"], "train", 3)
    episodes = usable_grasps(load_episodes(str(folder)))[: cfg["grasps"]]
    if len(episodes) < cfg["grasps"]:
        raise SystemExit(f"{folder} holds {len(episodes)} usable grasps, need {cfg['grasps']}")
    cfg["grasp_seeds"] = [e.seed for e in episodes]
    model = GraspSegmenter(width=cfg["width"]).train()
    if cfg.get("init"):
        load_weights(model, cfg["init"], cfg, ("width", "window"))
    data = GraspWindows(episodes, cfg["augment"], cfg["seed"])
    log, steps, seconds = fit(model, data, cfg,
                              lambda m, b, step: weighted_bce_sum(m(b["input"]), b["target"]))
    save_checkpoint(model, cfg, (WINDOW_PX, WINDOW_PX), steps, out)
    diff = export_grasp_model(model.eval(), out / "model.onnx")
    return write_summary(out, cfg, steps, seconds, diff, log)


def export_grasp_model(model: GraspSegmenter, path: Path) -> float:
    """ONNX (``input (1, 10, s, s)`` -> ``out (1, 2, s, s)`` probabilities), then one ONNX
    Runtime check against torch; returns the largest absolute difference."""
    x = torch.from_numpy(np.random.default_rng(0).random(
        (1, 10, WINDOW_PX, WINDOW_PX)).astype(np.float32))
    return export_checked(torch.nn.Sequential(model, torch.nn.Sigmoid()), {"input": x}, path)

if __name__ == "__main__":
    main()
