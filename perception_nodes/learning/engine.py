"""The training loop both models share: AdamW with a cosine schedule, gradient clipping,
a log line every 20 steps, an atomic checkpoint that carries its arguments and input size."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

StepLosses = Callable[[nn.Module, dict[str, torch.Tensor], int], dict[str, torch.Tensor]]


def fit(model: nn.Module, data: Dataset, cfg: dict, step_losses: StepLosses
        ) -> tuple[list[dict], int, float]:
    """Train ``model`` for ``cfg["steps"]`` steps of ``cfg["batch"]`` on ``data`` (seeded
    shuffling; ``data.epoch`` is advanced so augmentation differs by epoch).

    ``step_losses(model, batch, step)`` returns the loss parts with their sum as ``total``
    (other entries, such as the KL weight, are logged). Returns the log, the steps done and
    the seconds it took.
    """
    loader = DataLoader(data, batch_size=cfg["batch"], shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg["seed"]))
    optim = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg["steps"]))))
    log, step, start = [], 0, time.monotonic()
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
                            **{k: float(v) for k, v in parts.items()}})
                print(json.dumps(log[-1]), flush=True)
            if step >= cfg["steps"]:
                break
    return log, step, time.monotonic() - start


def save_checkpoint(model: nn.Module, cfg: dict, size: tuple[int, int], step: int,
                    out: Path) -> None:
    """``out/checkpoint.pt``: weights, arguments, input size and step, written atomically."""
    ckpt = {"model": model.state_dict(), "args": cfg, "input_size": size, "step": step}
    torch.save(ckpt, out / "checkpoint.pt.tmp")
    (out / "checkpoint.pt.tmp").replace(out / "checkpoint.pt")


def write_summary(out: Path, cfg: dict, steps: int, seconds: float, onnx_diff: float,
                  log: list[dict]) -> dict:
    """``out/summary.json``, which the model card is written from; returns it."""
    summary = {"args": cfg, "steps": steps, "train_seconds": seconds,
               "onnx_max_abs_diff": onnx_diff, "log": log}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
