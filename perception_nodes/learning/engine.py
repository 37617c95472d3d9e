"""The training loop both models share: AdamW with a cosine schedule, gradient clipping,
a log line every 20 steps, an atomic checkpoint that carries its arguments and input size."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

StepLosses = Callable[[nn.Module, dict[str, torch.Tensor], int], dict[str, torch.Tensor]]


def training_parser(prog: str, doc: str | None, presets: dict, data: str, width: int,
                    size_key: str, size_help: str) -> argparse.ArgumentParser:
    """The arguments every training script takes: ``--preset``, ``--data``, ``--out``,
    ``--width``, the preset overrides ``--steps --batch --SIZE_KEY --lr``, ``--seed`` and
    ``--threads``; scripts add their own."""
    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(presets), default="default")
    ap.add_argument("--data", default=data, help="dataset root")
    ap.add_argument("--split", default="train",
                    help="scene split to train on, a folder under --data (classic_train: "
                    "the first cell's look, on which the models published before "
                    "2026-11-30 were trained)")
    ap.add_argument("--out", required=True, help="folder for checkpoint, ONNX and log")
    ap.add_argument("--width", type=int, default=width, help="feature width")
    ap.add_argument("--steps", type=int, help="override the preset")
    ap.add_argument("--batch", type=int, help="override the preset")
    ap.add_argument(f"--{size_key}", type=int, help=f"{size_help} (override the preset)")
    ap.add_argument("--lr", type=float, help="override the preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def add_scene_input_args(ap: argparse.ArgumentParser) -> None:
    """``--inputs`` and ``--augment`` of the scene-trained instance models (latent,
    baseline, superpixel)."""
    ap.add_argument("--inputs", choices=("rgb", "rgbh"), default="rgb",
                    help="what the model reads: colour, or colour and height above the "
                    "scene's calibrated floor (core.instance_encoding.network_input)")
    ap.add_argument("--augment", choices=("basic", "full"), default="basic",
                    help="training augmentation (learning/augment.py): basic = flips and "
                    "brightness; full adds colour jitter, blur, noise, zoom-crop, depth holes")


def run_config(args: argparse.Namespace, presets: dict, size_key: str, **extra) -> dict:
    """The preset, overridden by explicit arguments, plus the common ones and ``extra``:
    what the checkpoint records."""
    cfg = dict(presets[args.preset])
    cfg.update({k: getattr(args, k) for k in ("steps", "batch", size_key, "lr")
                if getattr(args, k) is not None})
    cfg.update(preset=args.preset, data=args.data, split=args.split, out=args.out,
               seed=args.seed,
               width=args.width, threads=args.threads, **extra)
    # recorded only when not the default, so earlier runs' configs read as they were
    cfg.update({k: getattr(args, k) for k, default in (("inputs", "rgb"), ("augment", "basic"))
                if getattr(args, k, default) != default})
    return cfg


def start_run(cfg: dict) -> Path:
    """Seed torch, set its threads and make the output folder; returns the folder."""
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    return out


def fit(model: nn.Module, data: Dataset, cfg: dict, step_losses: StepLosses,
        state: Path | None = None, state_every: int = 50) -> tuple[list[dict], int, float]:
    """Train ``model`` for ``cfg["steps"]`` steps of ``cfg["batch"]`` on ``data`` (seeded
    shuffling; ``data.epoch`` is advanced so augmentation differs by epoch).

    ``step_losses(model, batch, step)`` returns the loss parts with their sum as ``total``
    (other entries, such as the KL weight, are logged). With ``state``, the weights,
    optimizer, schedule, step, epoch and log are written there atomically every
    ``state_every`` steps, and a run that finds the file goes on from it (an interrupted
    run resumes; the epoch it was in restarts with a shuffle of its own). Returns the log,
    the steps done and the seconds it took (this call's).
    """
    generator = torch.Generator().manual_seed(cfg["seed"])
    loader = DataLoader(data, batch_size=cfg["batch"], shuffle=True, drop_last=True,
                        generator=generator)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, cfg["steps"])))))
    log, step, start = [], 0, time.monotonic()
    if state is not None and Path(state).exists():
        saved = torch.load(state, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        sched.load_state_dict(saved["sched"])
        step, data.epoch, log = saved["step"], saved["epoch"], saved["log"]
        generator.manual_seed(cfg["seed"] * 7919 + data.epoch)
        print(f"resumed from {state} at step {step} of {cfg['steps']}", flush=True)
    while step < cfg["steps"]:
        data.epoch += 1
        for batch in loader:
            parts = step_losses(model, batch, step)
            if not torch.isfinite(parts["total"]):
                raise FloatingPointError(f"loss is {parts['total'].item()} at step {step}")
            optim.zero_grad(set_to_none=True)
            parts["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            sched.step()
            step += 1
            if step % 20 == 0 or step == cfg["steps"]:
                log.append({"step": step, "seconds": time.monotonic() - start,
                            **{k: float(v.detach()) if torch.is_tensor(v) else float(v)
                               for k, v in parts.items()}})
                print(json.dumps(log[-1]), flush=True)
            if state is not None and (step % state_every == 0 or step == cfg["steps"]):
                _save_state(Path(state), model, optim, sched, step, data.epoch, log)
            if step >= cfg["steps"]:
                break
    return log, step, time.monotonic() - start


def _save_state(path: Path, model: nn.Module, optim, sched, step: int, epoch: int,
                log: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optim": optim.state_dict(),
                "sched": sched.state_dict(), "step": step, "epoch": epoch, "log": log}, tmp)
    tmp.replace(path)


def save_checkpoint(model: nn.Module, cfg: dict, size: tuple[int, int], step: int,
                    out: Path) -> None:
    """``out/checkpoint.pt``: weights, arguments, input size and step, written atomically."""
    ckpt = {"model": model.state_dict(), "args": cfg, "input_size": size, "step": step}
    torch.save(ckpt, out / "checkpoint.pt.tmp")
    (out / "checkpoint.pt.tmp").replace(out / "checkpoint.pt")


def load_weights(model: nn.Module, checkpoint: Path | str, cfg: dict, same: tuple[str, ...]
                 ) -> None:
    """Load a checkpoint's weights into ``model`` to go on training from them; ValueError if
    the checkpoint's arguments ``same`` (what fixes the architecture) differ from ``cfg``'s."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    theirs = {k: ckpt["args"].get(k) for k in same}
    ours = {k: cfg.get(k) for k in same}
    if theirs != ours:
        raise ValueError(f"--init {checkpoint} has {theirs}, this run {ours}")
    model.load_state_dict(ckpt["model"])


def write_summary(out: Path, cfg: dict, steps: int, seconds: float, onnx_diff: float,
                  log: list[dict]) -> dict:
    """``out/summary.json``, which the model card is written from; returns it."""
    summary = {"args": cfg, "steps": steps, "train_seconds": seconds,
               "onnx_max_abs_diff": onnx_diff, "log": log}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
