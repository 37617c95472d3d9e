"""Train the latent segmenter (or its single-hypothesis baseline) and export it to ONNX.

    perception train --preset default --data data/sim --out runs/train/latent
    perception train --preset default --baseline --out runs/train/baseline
    perception train --preset smoke --out /tmp/smoke      # what the tests run
    perception train --inputs rgbh --augment full --out runs/train/latent_rgbh  # RGB-D
    perception train --scenes 100 --paste-crops crops.npz  # grasp self-supervision pasting

Reproducible: argument parser + ``main(args)``, named presets, seeded everything,
checkpoints that carry their arguments and input size, export followed by an ONNX Runtime
check. Losses: foreground BCE, penalty-reduced focal loss on the centre heatmap
(superpixel one-shot's
focal centre loss), L1 on offsets, and the KL term of the ELBO with a warm-up (Latent-MaskRCNN,
Eq. 3: beta = 0 early, raised towards the end).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as fn

from perception_nodes.core.cut_paste import load_crops
from perception_nodes.learning.data import PastedSceneDataset, SceneDataset
from perception_nodes.learning.engine import (
    add_scene_input_args,
    fit,
    load_weights,
    run_config,
    save_checkpoint,
    start_run,
    training_parser,
    write_summary,
)
from perception_nodes.learning.export import export_onnx
from perception_nodes.learning.model import CHANNELS, LatentSegmenter, kl_divergence

PRESETS = {
    "smoke": {"height": 48, "width_px": 64, "steps": 3, "batch": 2, "scenes": 4, "lr": 2e-3},
    "default": {"height": 240, "width_px": 320, "steps": 3000, "batch": 8, "scenes": 2000,
                "lr": 2e-3},
}


def build_parser() -> argparse.ArgumentParser:
    ap = training_parser("perception train", __doc__, PRESETS, "data/sim", 64, "scenes",
                         "training scenes")
    add_scene_input_args(ap)
    ap.add_argument("--baseline", action="store_true", help="no latent: single hypothesis")
    ap.add_argument("--latent-dim", type=int, default=64)
    ap.add_argument("--kl-warmup", type=float, nargs=2, default=(0.3, 0.7),
                    metavar=("START", "END"), help="fractions of training where beta ramps "
                    "from 0 to --kl-max")
    # The likelihood terms are means over ~4,800 grid cells while the KL is a sum over the
    # latent's dimensions, so beta = 1 would weigh the latent ~4,800x more than the ELBO of
    # the whole image does; it collapsed the posterior (KL 2e-4 nats at 1,600 steps).
    ap.add_argument("--kl-max", type=float, default=1e-3)
    ap.add_argument("--outlier-exposure", type=int, default=0, metavar="N",
                    help="also train on the first N anomaly_train scenes with their foreign "
                    "objects labelled 'not an item' (for the anomaly score, UGainS)")
    ap.add_argument("--init", default=None, metavar="CHECKPOINT",
                    help="start from this checkpoint's weights (fine-tuning; same latent_dim "
                    "and width) instead of random ones")
    ap.add_argument("--paste-crops", default=None, help="crop bank (.npz from `perception "
                    "selfsup`) pasted onto every training scene, 0..--paste-max per scene")
    ap.add_argument("--paste-max", type=int, default=25)
    ap.add_argument("--inpaint-px", type=int, default=5,
                    help="inpainted band around pasted objects (0: no inpainting)")
    return ap


def resolve_args(args: argparse.Namespace) -> dict:
    """The preset, overridden by explicit arguments: what the checkpoint records."""
    # pasting is recorded only when used: configs of models trained without it stay as they were
    paste = {"paste_crops": args.paste_crops, "paste_max": args.paste_max,
             "inpaint_px": args.inpaint_px} if args.paste_crops else {}
    if args.outlier_exposure:
        paste["outlier_exposure"] = args.outlier_exposure
    if args.init:
        paste["init"] = args.init
    return run_config(args, PRESETS, "scenes",
                      latent_dim=0 if args.baseline else args.latent_dim,
                      kl_warmup=list(args.kl_warmup), kl_max=args.kl_max, **paste)


def kl_beta(step: int, total: int, warmup: tuple[float, float], beta_max: float) -> float:
    """KL weight: 0 before ``warmup[0]`` of training, linear to ``beta_max`` at warmup[1]."""
    t = step / max(1, total)
    start, end = warmup
    if t <= start:
        return 0.0
    return beta_max * min(1.0, (t - start) / max(1e-9, end - start))


def focal_heatmap_loss(logit: torch.Tensor, target: torch.Tensor,
                       known: torch.Tensor | None = None) -> torch.Tensor:
    """Penalty-reduced focal loss (CenterNet), normalised by the number of centres;
    negatives only where ``known`` (all of them when None)."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = target >= 0.999
    pos_loss = -((1 - p) ** 2 * torch.log(p))[pos].sum()
    neg = (1 - target) ** 4 * p**2 * torch.log(1 - p)
    if known is not None:
        neg = neg * known
    neg_loss = -neg[~pos].sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def losses(model: LatentSegmenter, batch: dict, beta: float) -> dict[str, torch.Tensor]:
    """The loss parts and their weighted ``total``. A batch may carry ``known`` ``(B, h, w)``
    on the grid: 1 where the labels are known, 0 where nobody labelled the pixels (items
    of an unlabelled frame around pasted ones): there neither foreground nor centres are
    scored."""
    ids = batch["instance_ids"] if model.latent_dim else None
    out = model(batch["image"], ids)
    pred = out["out"]
    fg = batch["fg"]
    known = batch.get("known")
    parts = {
        "fg": fn.binary_cross_entropy_with_logits(pred[:, 0], fg) if known is None else
        (fn.binary_cross_entropy_with_logits(pred[:, 0], fg, reduction="none") * known
         ).sum() / known.sum().clamp(min=1),
        "heatmap": focal_heatmap_loss(pred[:, 1], batch["heatmap"], known),
        "offsets": (fn.l1_loss(pred[:, 2:], batch["offsets"], reduction="none").sum(1) * fg
                    ).sum() / fg.sum().clamp(min=1),
    }
    if model.latent_dim:
        parts["kl"] = kl_divergence(out["mu"], out["logvar"], out["prior_mu"],
                                    out["prior_logvar"])
    else:
        parts["kl"] = torch.zeros(())
    parts["total"] = parts["fg"] + parts["heatmap"] + 0.1 * parts["offsets"] + beta * parts["kl"]
    return parts


def ensure_data(cfg: dict) -> Path:
    """The training folder; the smoke preset renders its few tiny scenes if missing."""
    split = cfg.get("split", "train")  # checkpoints from before --split read "train"
    folder = Path(cfg["data"]) / split
    if cfg["preset"] == "smoke" and not any(folder.glob("scene_*.npz")):
        from perception_nodes.sim.dataset import generate

        generate(cfg["data"], split, cfg["scenes"], width=cfg["width_px"],
                 height=cfg["height"])
    return folder


def main(argv: list[str] | None = None) -> dict:
    """Train, checkpoint, export; returns a summary (also written to OUT/summary.json)."""
    cfg = resolve_args(build_parser().parse_args(argv))
    out = start_run(cfg)
    np.random.seed(cfg["seed"])
    size = (cfg["height"], cfg["width_px"])
    if cfg.get("paste_crops") and cfg.get("inputs", "rgb") != "rgb":
        raise SystemExit("--paste-crops pastes colour crops: it trains --inputs rgb models")
    if cfg.get("paste_crops"):
        data = PastedSceneDataset(ensure_data(cfg), size, load_crops(cfg["paste_crops"]),
                                  cfg["paste_max"], cfg["inpaint_px"], seed=cfg["seed"])
    else:
        data = SceneDataset(ensure_data(cfg), size, augment=True, seed=cfg["seed"],
                            foreign_as_background=True, inputs=cfg.get("inputs", "rgb"),
                            augmentation=cfg.get("augment", "basic"))
    data.paths = data.paths[: cfg["scenes"]]
    if cfg.get("outlier_exposure"):
        extra = sorted((Path(cfg["data"]) / "anomaly_train").glob("scene_*.npz"))
        if len(extra) < cfg["outlier_exposure"]:
            raise SystemExit(f"{len(extra)} anomaly_train scenes, need "
                             f"{cfg['outlier_exposure']}: run `perception dataset --split "
                             "anomaly_train`")
        data.paths += extra[: cfg["outlier_exposure"]]
    model = LatentSegmenter(latent_dim=cfg["latent_dim"], width=cfg["width"],
                            in_channels=CHANNELS[cfg.get("inputs", "rgb")]).train()
    if cfg.get("init"):
        # RbA fine-tunes a trained segmenter with outlier exposure (UGainS Sec. 3) rather
        # than training it afresh: the item hypotheses it has learned are kept
        load_weights(model, cfg["init"], cfg, ("latent_dim", "width", "inputs"))

    def step_losses(model: LatentSegmenter, batch: dict, step: int) -> dict:
        beta = kl_beta(step, cfg["steps"], cfg["kl_warmup"], cfg["kl_max"])
        return {"beta": beta, **losses(model, batch, beta)}

    log, steps, seconds = fit(model, data, cfg, step_losses)
    save_checkpoint(model, cfg, size, steps, out)
    diff = export_onnx(model.eval(), size, out / "model.onnx")
    return write_summary(out, cfg, steps, seconds, diff, log)

if __name__ == "__main__":
    main()
