"""Train the monocular depth model on camera sweeps, self-supervised (mono-depth +
instances), and export.

    perception train-depth --preset default --out runs/train/depth_st
    perception train-depth --preset default --offsets --weighting dwa --out runs/train/depth_mt_dwa
    perception train-depth --preset smoke --out /tmp/depth      # what the tests run

Data: the first ``--sequences`` sweeps of ``depth_train`` (``sim.sequences``); every frame
with a neighbour on each side is a target, its neighbours the sources (t-1, t+1). Depth and
pose are learned from the images alone (ground-truth depth is never read; the recorded
camera poses only with ``--pose known``, as a robot knows its wrist camera's pose); the
instance-offset task (``--offsets``) is supervised by the sim's instance labels, as the
paper's is by Mask R-CNN masks. Colour jitter (the same for the three frames) and a
horizontal flip (of the three frames and the intrinsics) augment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from perception_nodes.core.instance_encoding import IMAGE_MEAN, IMAGE_STD
from perception_nodes.learning.depth_losses import (
    SMOOTHNESS_WEIGHT,
    SSIM_ALPHA,
    WEIGHTINGS,
    TaskWeighting,
    depth_loss,
    offset_loss,
    pose_matrix,
)
from perception_nodes.learning.depth_model import (
    POSE_MODES,
    DepthExport,
    DepthNet,
    disparity_to_depth,
)
from perception_nodes.learning.engine import (
    fit,
    run_config,
    save_checkpoint,
    start_run,
    training_parser,
    write_summary,
)
from perception_nodes.learning.export import export_checked

PRESETS = {
    "smoke": {"height": 48, "width_px": 64, "steps": 3, "batch": 2, "sequences": 2,
              "lr": 1e-3},
    "default": {"height": 120, "width_px": 160, "steps": 2000, "batch": 4, "sequences": 600,
                "lr": 1e-3},
}
SPLIT = "depth_train"


def instance_offsets(labels: np.ndarray) -> np.ndarray:
    """``(2, H, W) float32``: (row, col) offset of each instance pixel to its instance's
    centroid, in units of the image width (Eq. 6); 0 off instances."""
    h, w = labels.shape
    out = np.zeros((2, h, w), np.float32)
    rows, cols = np.indices((h, w), dtype=np.float32)
    for value in np.unique(labels[labels > 0]):
        m = labels == value
        out[0][m] = (rows[m].mean() - rows[m]) / w
        out[1][m] = (cols[m].mean() - cols[m]) / w
    return out


def scaled_intrinsics(k_mat: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
                      ) -> np.ndarray:
    """``k_mat`` of an image of ``from_size (H, W)`` for the same image resized to
    ``to_size``."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    out = k_mat.astype(np.float32).copy()
    out[0] *= sx
    out[1] *= sy
    # pixel centres: x' + 0.5 = s (x + 0.5)
    out[0, 2] = sx * (k_mat[0, 2] + 0.5) - 0.5
    out[1, 2] = sy * (k_mat[1, 2] + 0.5) - 0.5
    return out


class SweepTriplets(Dataset):
    """``(target, t-1, t+1)`` frames of the sweeps, at the model's input size."""

    def __init__(self, paths: list[Path], size: tuple[int, int], seed: int = 0,
                 augment: bool = True) -> None:
        if not paths:
            raise FileNotFoundError(f"no sweeps to train on; run `perception dataset --split "
                                    f"{SPLIT}`")
        self.size, self.seed, self.augment, self.epoch = size, seed, augment, 0
        self.items = []
        for path in paths:
            with np.load(path) as data:
                frames = data["poses"].shape[0]  # the smallest array that counts frames
            self.items += [(path, t) for t in range(1, frames - 1)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, t = self.items[index]
        h, w = self.size
        with np.load(path) as data:
            rgb = data["rgb"][t - 1: t + 2]
            labels = data["labels"][t]
            world = data["poses"]
            # T_target->source from the arm's kinematics, read only by --pose known
            known = np.stack([np.linalg.inv(world[t + d]) @ world[t] for d in (-1, 1)])
            k_mat = scaled_intrinsics(data["camera_k"], rgb.shape[1:3], self.size)
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in rgb])
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        frames = frames.astype(np.float32) / 255.0
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)
            frames = np.clip(frames * gain + bias, 0.0, 1.0)
            if rng.uniform() < 0.5:
                frames, labels = frames[:, :, ::-1], labels[:, ::-1]
                k_mat = k_mat.copy()
                k_mat[0, 2] = (w - 1) - k_mat[0, 2]
                # the mirrored world: x negated in both camera frames
                flip = np.diag([-1.0, 1.0, 1.0, 1.0])
                known = flip @ known @ flip
        prev, target, nxt = (torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)))
                             for f in frames)
        return {"target": target, "sources": torch.stack([prev, nxt]),
                "k_mat": torch.from_numpy(k_mat),
                "known_poses": torch.from_numpy(known.astype(np.float32)),
                "offsets": torch.from_numpy(instance_offsets(np.ascontiguousarray(labels))),
                "on_instance": torch.from_numpy((labels > 0).astype(np.float32))[None]}


def normalise(image01: torch.Tensor) -> torch.Tensor:
    """[0, 1] images ``(B, 3, H, W)`` to the network input: ``core.instance_encoding``'s
    normalisation, the one ``preprocess`` applies at inference."""
    return (image01 - IMAGE_MEAN) / IMAGE_STD


class DepthTraining(torch.nn.Module):
    """The network and the task weighting (whose uncertainty weights are learned too)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.net = DepthNet(offsets=cfg["offsets"], pose=cfg["pose"])
        self.weighting = TaskWeighting(cfg["weighting"], cfg["dwa_temperature"],
                                       cfg["dwa_window"])
        self.alpha, self.smoothness = cfg["ssim_alpha"], cfg["smoothness"]

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = normalise(batch["target"])
        out = self.net(target)
        sources = list(batch["sources"].unbind(1))
        if self.net.pose_mode == "known":
            poses = list(batch["known_poses"].unbind(1))
        else:
            poses = [pose_matrix(self.net.pose(target, normalise(s))) for s in sources]
        ld, mask = depth_loss(out["disp"], disparity_to_depth, batch["target"], sources, poses,
                              batch["k_mat"], self.alpha, self.smoothness)
        parts = {"depth": ld, "automask": mask.mean()}
        if self.net.with_offsets:
            li = offset_loss(out["offsets"], batch["offsets"], batch["on_instance"])
            parts.update(offsets=li, total=self.weighting(ld, li))
        else:
            parts["total"] = ld
        return parts


def build_parser() -> argparse.ArgumentParser:
    ap = training_parser("perception train-depth", __doc__, PRESETS, "data/sim", 0,
                         "sequences", "training sweeps")
    ap.add_argument("--offsets", action="store_true",
                    help="add the instance-offset task (multi-task, Sec. III-B)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="dwa",
                    help="how the two tasks' losses combine (Sec. III-C)")
    # separate by default: in our runs the shared encoder's pose head was slow to use the
    # source frame at all (the same motion for t-1 and t+1 after 300 steps), as the paper
    # found its single-task shared-pose model behind Monodepth2's separate pose network
    ap.add_argument("--pose", choices=POSE_MODES, default="separate",
                    help="pose from a separate pose network, the shared encoder, or known "
                    "(the arm's kinematics: the sweep's recorded camera poses)")
    ap.add_argument("--dwa-temperature", type=float, default=2.0)
    ap.add_argument("--dwa-window", type=int, default=50, help="steps per DWA 'epoch'")
    ap.add_argument("--ssim-alpha", type=float, default=SSIM_ALPHA)
    ap.add_argument("--smoothness", type=float, default=SMOOTHNESS_WEIGHT)
    return ap


def sweep_paths(data: str, count: int, smoke: bool, size: tuple[int, int]) -> list[Path]:
    """The first ``count`` training sweeps (the smoke preset renders its tiny ones)."""
    folder = Path(data) / SPLIT
    if smoke and len(list(folder.glob("sequence_*.npz"))) < count:
        from perception_nodes.sim.sequences import generate_sequences

        generate_sequences(data, SPLIT, count, width=size[1], height=size[0])
    return sorted(folder.glob("sequence_*.npz"))[:count]


def main(argv: list[str] | None = None) -> dict:
    """Train, checkpoint, export; returns the summary (also OUT/summary.json)."""
    args = build_parser().parse_args(argv)
    cfg = run_config(args, PRESETS, "sequences", model="depth", offsets=args.offsets,
                     weighting=args.weighting if args.offsets else "none", pose=args.pose,
                     dwa_temperature=args.dwa_temperature, dwa_window=args.dwa_window,
                     ssim_alpha=args.ssim_alpha, smoothness=args.smoothness)
    out = start_run(cfg)
    size = (cfg["height"], cfg["width_px"])
    data = SweepTriplets(sweep_paths(cfg["data"], cfg["sequences"], cfg["preset"] == "smoke",
                                     size), size, cfg["seed"])
    trainer = DepthTraining({**cfg, "weighting": args.weighting}).train()
    log, steps, seconds = fit(trainer, data, cfg, lambda m, b, step: m.losses(b))
    save_checkpoint(trainer.net, cfg, size, steps, out)
    diff = export_depth_model(trainer.net.eval(), size, out / "model.onnx")
    return write_summary(out, cfg, steps, seconds, diff, log)


def load_depth_checkpoint(path: Path | str) -> tuple[DepthNet, dict]:
    """The network of a depth checkpoint and the checkpoint's dict."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net = DepthNet(offsets=ckpt["args"]["offsets"], pose=ckpt["args"]["pose"])
    net.load_state_dict(ckpt["model"])
    return net.eval(), ckpt


def export_depth_model(model: DepthNet, size: tuple[int, int], path: Path) -> float:
    """ONNX ``image (1, 3, H, W)`` -> ``out (1, 1, H, W)`` depth, then one ONNX Runtime
    check; returns the largest absolute difference (relative to the depth's scale)."""
    image = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, *size),
                                                                      dtype=np.float32))
    return export_checked(DepthExport(model), {"image": image}, path)

if __name__ == "__main__":
    main()
