"""Adapt the deployed instance model to a cell's own items from its own grasps (grasp
self-supervision Sec. III-B and VI), into a new version in a model store.

    perception adapt --dataset data/grasps --store models_store --out runs/adapt/grasp
    perception adapt --preset smoke --dataset DIR --store DIR --out DIR   # what tests run

Reads a ``grasp_capture`` dataset (what a running cell writes; nothing from the simulator):

1. **Split**: a fixed share of the held grasps (by each sample's checksum, so the split does
   not move when the dataset grows) is held out for evaluation.
2. **Masks** (Sec. III-A/B.1): each held grasp's item from the grasp segmentation model
   (``--masks grasp``) or grey-blur image subtraction (``--masks subtract``, Paste-Subtract),
   kept only if it passes the paper's filters (occlusion, entropy and contour; contour only
   for subtraction).
3. **Crop bank** (Sec. III-B.2): the before frame's colour and height under every kept mask
   of the training share.
4. **Fine-tune** (Sec. III-B.2/3) from the deployed model's own weights: crops pasted onto the
   cell's before frames (0-25 each, rotated 0-360 deg, scaled 0.75-1.25, boundaries
   inpainted with OpenCV Telea for the paper's diffusion model), alternated with the original
   labelled training scenes (with crops pasted too) so nothing is forgotten; in the cell's
   frames only pasted items and bare floor are labelled, the rest is not scored
   (``learning.adapt_data``).
5. **Evaluate** before and after: mean IoU between the model's instance at each held-out
   grasp and that grasp's mask, and mAP on labelled sim scenes (``--eval-split``) when there
   are any.
6. **Store**: the new version (ONNX, checkpoint, card with parent, dataset, grasp count,
   command, metrics) in the store; the parent goes in first as v1 when the store is new.

Every stage writes its result into ``--out`` and is skipped when it is there: an interrupted
run, started again with the same arguments, goes on where it stopped (training from its
last state, every 50 steps). Height above the floor comes from each before frame's depth
(``--floor-plane``, the cell's calibration; fitted per frame when empty, as the node does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from perception_nodes.capture.grasp_dataset import load_sample, read_manifest
from perception_nodes.core.camera_model import PinholeIntrinsics
from perception_nodes.core.cut_paste import cut_object, load_crops, pack_crops
from perception_nodes.core.floor_plane import parse_plane
from perception_nodes.core.grasp_segmentation import RANDOMIZED_CELL_T_ENT
from perception_nodes.inference.grasp_segmenter import MASK_SOURCES, GraspedItemMasker
from perception_nodes.inference.onnx_model import resolve_model
from perception_nodes.sim.dataset import save_npz_atomic

PRESETS = {
    "smoke": {"steps": 2, "batch": 2, "lr": 5e-4, "replay_scenes": 2, "eval_scenes": 2},
    "default": {"steps": 600, "batch": 8, "lr": 5e-4, "replay_scenes": 1000,
                "eval_scenes": 100},
}

# (h, w) every frame is brought to: the grasp segmentation model's scale (its 112 px window
# was sized for items at 320x240); the network resizes from it as at run time
WORK_SIZE = (240, 320)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="perception adapt", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="a grasp_capture dataset folder")
    ap.add_argument("--store", required=True, help="the model store (learning.model_store)")
    ap.add_argument("--out", required=True, help="work folder (resumable)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--name", default="latent_segmenter", help="the model's name in the store")
    ap.add_argument("--parent", default="",
                    help="ONNX of the model to adapt (default: the store's newest version of "
                    "--name, else the package's models/NAME.onnx); its checkpoint lies beside "
                    "it (NAME.pt in models/, checkpoint.pt in a store version)")
    ap.add_argument("--masks", choices=MASK_SOURCES, default="grasp")
    ap.add_argument("--grasp-model", default="grasp_segmenter_200")
    ap.add_argument("--no-filter", action="store_true", help="keep every mask")
    ap.add_argument("--entropy-threshold", type=float, default=RANDOMIZED_CELL_T_ENT,
                    help="grasp masks: keep a mask whose mean relative entropy is below this "
                    "(Sec. III-B.1; chosen on labelled training-look grasps)")
    ap.add_argument("--held-out", type=float, default=0.2, help="share of grasps held out")
    ap.add_argument("--floor-plane", default="", help="the cell's floor 'nx,ny,nz,d' (optical "
                    "frame, m); empty: fitted to each before frame")
    ap.add_argument("--replay", default="data/sim/train",
                    help="labelled training scenes mixed in ('' none; missing: none)")
    ap.add_argument("--eval-split", default="data/sim/novel",
                    help="labelled scenes for mAP before and after ('' or missing: none)")
    ap.add_argument("--mode", default="confidence_mask",
                    choices=("prior_mean", "confidence_mask"), help="the node's mode, for "
                    "the held-out grasp IoU")
    for key in ("steps", "batch", "replay_scenes", "eval_scenes"):
        ap.add_argument(f"--{key.replace('_', '-')}", type=int, help="override the preset")
    ap.add_argument("--lr", type=float, help="override the preset")
    ap.add_argument("--paste-max", type=int, default=25)
    ap.add_argument("--inpaint-px", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def resolve(args: argparse.Namespace) -> dict:
    cfg = dict(PRESETS[args.preset])
    cfg.update({k: getattr(args, k) for k in cfg if getattr(args, k, None) is not None})
    cfg.update({k: v for k, v in vars(args).items() if k not in cfg})
    return cfg


def log(msg: str) -> None:
    print(f"adapt: {msg}", flush=True)


def split_held_out(entries: list[dict], share: float) -> list[bool]:
    """Whether each entry is held out: by its checksum, so adding samples never moves one."""
    return [int(e["sha256"][:8], 16) / 0xFFFFFFFF < share for e in entries]


def frame_height(depth: np.ndarray, camera_k: np.ndarray, plane: np.ndarray | None,
                 seed: int) -> np.ndarray:
    """``(H, W) float32`` m above the floor of one before frame (the node's rule)."""
    from perception_nodes.inference.geometric import height_for_frame

    h, w = depth.shape
    return height_for_frame(depth, PinholeIntrinsics.from_matrix(camera_k, w, h), plane, seed)


def prepare(cfg: dict, out: Path, size: tuple[int, int] = WORK_SIZE) -> dict[str, np.ndarray]:
    """Stage 1-2: every held grasp at ``size``: ``rgb``, ``height``, its
    ``mask`` and whether it is ``kept`` and ``held`` out; ``files``. Cached in
    ``prepared.npz``."""
    path = out / "prepared.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    entries = [e for e in read_manifest(cfg["dataset"]) if e["success"]]
    if not entries:
        raise SystemExit(f"{cfg['dataset']}: no held grasp in the dataset")
    held = split_held_out(entries, cfg["held_out"])
    plane = parse_plane(cfg["floor_plane"]) if cfg["floor_plane"] else None
    masker = GraspedItemMasker(
        cfg["masks"], resolve_model(cfg["grasp_model"]) if cfg["masks"] == "grasp" else None,
        cfg["entropy_threshold"], not cfg["no_filter"], cfg["threads"])
    h, w = size
    rgbs, heights, masks, kept = [], [], [], []
    for i, entry in enumerate(entries):
        s = load_sample(cfg["dataset"], entry)
        if "before_depth" not in s:
            raise SystemExit(f"{entry['file']} has no before depth: the model reads height; "
                             "record with grasp_capture's record_depth")
        height = frame_height(s["before_depth"], s["camera_k"], plane, cfg["seed"])
        before = cv2.resize(s["before"], (w, h), interpolation=cv2.INTER_AREA)
        after = cv2.resize(s["after"], (w, h), interpolation=cv2.INTER_AREA)
        grasp = cv2.resize(s["grasp_mask"], (w, h), interpolation=cv2.INTER_NEAREST)
        mask, ok = masker(before, after, grasp)
        rgbs.append(before)
        heights.append(cv2.resize(height, (w, h), interpolation=cv2.INTER_NEAREST))
        masks.append(mask)
        kept.append(ok and bool(mask.any()))
        if (i + 1) % 25 == 0 or i + 1 == len(entries):
            log(f"masks {i + 1}/{len(entries)} ({sum(kept)} kept)")
    result = {"files": np.array([e["file"] for e in entries]), "rgb": np.stack(rgbs),
              "height": np.stack(heights).astype(np.float32), "mask": np.stack(masks),
              "kept": np.array(kept), "held": np.array(held)}
    save_npz_atomic(path, **result)
    return result


def build_crops(prep: dict[str, np.ndarray], out: Path) -> list:
    """Stage 3: the crop bank of the training share's kept masks (``crops.npz``)."""
    path = out / "crops.npz"
    if not path.exists():
        use = prep["kept"] & ~prep["held"]
        crops = [cut_object(prep["rgb"][i], prep["mask"][i], prep["height"][i])
                 for i in np.flatnonzero(use)]
        if not crops:
            raise SystemExit("no kept mask in the training share: nothing to paste")
        save_npz_atomic(path, **pack_crops(crops))
    return load_crops(str(path))


def grasp_iou(model: Path, prep: dict[str, np.ndarray], mode: str, seed: int,
              threads: int) -> dict:
    """Mean IoU between the model's instance under each held-out kept grasp's mask (the
    label most of the mask's pixels carry; none: IoU 0) and that mask."""
    from perception_nodes.inference.segmenter import ModeSegmenter

    seg = ModeSegmenter(mode, model, "cpu", seed, threads)
    ious = []
    for i in np.flatnonzero(prep["held"] & prep["kept"]):
        labels = seg(prep["rgb"][i], prep["height"][i]).labels
        mask = prep["mask"][i]
        under = labels[mask]
        under = under[under > 0]
        if under.size == 0:
            ious.append(0.0)
            continue
        inst = labels == np.bincount(under).argmax()
        ious.append(float((inst & mask).sum() / (inst | mask).sum()))
    seg.close()
    return {"grasp_iou": float(np.mean(ious)) if ious else None, "held_out_grasps": len(ious)}


def labelled_map(model: Path, folder: str, scenes: int, seed: int) -> dict | None:
    """mAP (Latent-MaskRCNN Table I, IoU 0.5:0.95) of the prior mean and the confidence
    masks on the first ``scenes`` labelled scenes of ``folder``; None without any."""
    from perception_nodes.eval.segmentation_eval import SegmentationSamples, evaluate
    from perception_nodes.inference.segmenter import SegmenterRunner
    from perception_nodes.sim.dataset import load_scene

    paths = sorted(Path(folder).glob("scene_*.npz"))[:scenes] if folder else []
    if not paths:
        return None
    runner = SegmenterRunner(model, "cpu", seed)

    def sample(rgb: np.ndarray, height: np.ndarray | None) -> SegmentationSamples:
        # one model: its prior mean stands in for Table I's baseline row, read by no one
        prior_mean, samples = runner.predict(rgb, 8, height)
        return SegmentationSamples(prior_mean, prior_mean, samples)

    report = evaluate((load_scene(p) for p in paths), sample, seed=seed)
    rows = report["table_i"]
    return {"scenes": len(paths), "split": folder,
            **{f"map_{m}": 100 * rows[m]["map"] for m in ("prior_mean", "confidence_mask")},
            **{f"map50_{m}": 100 * rows[m]["map50"] for m in ("prior_mean", "confidence_mask")}}


def evaluate_model(model: Path, prep: dict, cfg: dict, path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    log(f"evaluating {model}")
    result = {**grasp_iou(model, prep, cfg["mode"], cfg["seed"], cfg["threads"]),
              "labelled": labelled_map(model, cfg["eval_split"], cfg["eval_scenes"],
                                       cfg["seed"])}
    path.write_text(json.dumps(result, indent=1))
    return result


def resolve_parent(cfg: dict) -> tuple[Path, Path]:
    """The parent's ONNX and the checkpoint beside it."""
    from perception_nodes.learning.model_store import versions

    if cfg["parent"]:
        onnx = Path(cfg["parent"])
    elif versions(cfg["store"], cfg["name"]):
        onnx = resolve_model(versions(cfg["store"], cfg["name"])[-1], cfg["store"])
    else:
        onnx = resolve_model(cfg["name"])
    ckpt = onnx.with_name("checkpoint.pt") if onnx.name == "model.onnx" else \
        onnx.with_suffix(".pt")
    if not ckpt.exists():
        raise SystemExit(f"no checkpoint {ckpt} beside {onnx}: adapting needs the weights")
    return onnx, ckpt


def finetune(cfg: dict, parent_ckpt: Path, prep: dict, crops: list, out: Path) -> Path:
    """Stage 4: fine-tune from the parent's weights; returns the exported ONNX."""
    import torch

    from perception_nodes.learning.adapt_data import CellPasteDataset
    from perception_nodes.learning.engine import fit, save_checkpoint, write_summary
    from perception_nodes.learning.export import export_onnx
    from perception_nodes.learning.model import CHANNELS, LatentSegmenter
    from perception_nodes.learning.train import losses

    onnx = out / "train" / "model.onnx"
    if onnx.exists():
        return onnx
    (out / "train").mkdir(parents=True, exist_ok=True)
    parent = torch.load(parent_ckpt, map_location="cpu", weights_only=True)
    pargs, size = parent["args"], tuple(parent["input_size"])
    if pargs.get("inputs") != "rgbh":
        raise SystemExit("adapting pastes colour and height: the model must read RGB-H")
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    model = LatentSegmenter(latent_dim=pargs["latent_dim"], width=pargs["width"],
                            in_channels=CHANNELS["rgbh"])
    model.load_state_dict(parent["model"])
    model.train()
    frames = [(prep["rgb"][i], prep["height"][i]) for i in np.flatnonzero(~prep["held"])]
    replay = cfg["replay"] if cfg["replay"] and Path(cfg["replay"]).is_dir() else None
    data = CellPasteDataset(frames, crops, size, WORK_SIZE, replay, cfg["replay_scenes"],
                            cfg["paste_max"], cfg["inpaint_px"], cfg["seed"],
                            pargs.get("augment", "full"))
    beta = pargs["kl_max"]  # the parent finished its KL warm-up

    def step_losses(m, batch: dict, step: int) -> dict:
        return {"beta": beta, **losses(m, batch, beta)}

    train_cfg = {**pargs, "steps": cfg["steps"], "batch": cfg["batch"], "lr": cfg["lr"],
                 "seed": cfg["seed"], "threads": cfg["threads"], "out": str(out / "train"),
                 "init": str(parent_ckpt), "adapt": {k: cfg[k] for k in (
                     "dataset", "masks", "grasp_model", "replay", "replay_scenes")}}
    log(f"fine-tuning {cfg['steps']} steps of {cfg['batch']} on {len(frames)} cell frames, "
        f"{len(crops)} crops, replay {replay or 'none'}")
    steps_log, steps, seconds = fit(model, data, train_cfg, step_losses,
                                    state=out / "train" / "state.pt")
    save_checkpoint(model, train_cfg, size, steps, out / "train")
    diff = export_onnx(model.eval(), size, onnx)
    write_summary(out / "train", train_cfg, steps, seconds, diff, steps_log)
    return onnx


def card(cfg: dict, version: str, parent: Path, report: dict) -> str:
    b, a = report["before"], report["after"]

    def metric(r: dict) -> str:
        iou = "n/a" if r["grasp_iou"] is None else f"{100 * r['grasp_iou']:.1f}"
        text = f"held-out grasp IoU {iou} ({r['held_out_grasps']} grasps)"
        if r["labelled"]:
            lab = r["labelled"]
            text += (f"; mAP {lab['map_confidence_mask']:.1f} (confidence_mask), "
                     f"{lab['map_prior_mean']:.1f} (prior_mean) on {lab['scenes']} scenes of "
                     f"{lab['split']}")
        return text

    return "\n".join([
        f"# {version}", "",
        f"- parent: `{parent}` (sha256 `{report['parent_sha256']}`)",
        f"- dataset: `{cfg['dataset']}` (manifest sha256 "
        f"`{report['dataset_manifest_sha256'][:16]}`): {report['grasps']} held grasps, "
        f"{report['held_out']} held out, {report['kept']} masks kept by the filters, "
        f"{report['crops']} crops ({cfg['masks']} masks"
        + (f", `{cfg['grasp_model']}`)" if cfg["masks"] == "grasp" else ")"),
        f"- fine-tuned {cfg['steps']} steps of batch {cfg['batch']}, AdamW lr {cfg['lr']} "
        f"cosine, seed {cfg['seed']}, replay `{cfg['replay'] or 'none'}`; "
        f"{report['seconds'] / 60:.1f} min (the last call) on {cfg['threads']} CPU thread(s)",
        f"- command: `{report['command']}`",
        f"- before: {metric(b)}",
        f"- after: {metric(a)}", ""])


def main(argv: list[str] | None = None) -> dict:
    """Run (or resume) the adaptation; returns the report (also ``OUT/report.json``)."""
    from perception_nodes.inference.onnx_model import sha256_of
    from perception_nodes.learning.model_store import add_version, versions

    argv = sys.argv[1:] if argv is None else argv
    cfg = resolve(build_parser().parse_args(argv))
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "adapt.json"
    if saved.exists() and json.loads(saved.read_text()) != cfg:
        raise SystemExit(f"{out} holds a run with other arguments ({saved}): use another "
                         "--out or the same arguments to resume it")
    saved.write_text(json.dumps(cfg, indent=1))
    report_path = out / "report.json"
    if report_path.exists():
        log(f"done before: {report_path}")
        return json.loads(report_path.read_text())
    start = time.monotonic()
    parent_onnx, parent_ckpt = resolve_parent(cfg)
    prep = prepare(cfg, out)
    crops = build_crops(prep, out)
    log(f"{len(prep['files'])} held grasps, {int(prep['held'].sum())} held out, "
        f"{int(prep['kept'].sum())} masks kept, {len(crops)} crops")
    before = evaluate_model(parent_onnx, prep, cfg, out / "eval_before.json")
    model = finetune(cfg, parent_ckpt, prep, crops, out)
    after = evaluate_model(model, prep, cfg, out / "eval_after.json")
    if not versions(cfg["store"], cfg["name"]):  # the deployed model, to roll back to
        add_version(cfg["store"], cfg["name"], parent_onnx,
                    f"# {cfg['name']}@v1\n\nThe deployed model the store started from: "
                    f"`{parent_onnx}`.\n", parent_ckpt)
    report = {"parent": str(parent_onnx), "parent_sha256": sha256_of(parent_onnx),
              "grasps": len(prep["files"]), "held_out": int(prep["held"].sum()),
              "kept": int(prep["kept"].sum()), "crops": len(crops),
              "before": before, "after": after,
              "dataset_manifest_sha256": dataset_digest(cfg["dataset"]),
              "seconds": time.monotonic() - start,
              "command": "perception adapt " + shlex.join(argv)}
    version = f"{cfg['name']}@v{len(versions(cfg['store'], cfg['name'])) + 1}"
    report["version"] = add_version(cfg["store"], cfg["name"], model,
                                    card(cfg, version, parent_onnx, report),
                                    out / "train" / "checkpoint.pt")
    report["sha256"] = sha256_of(model)
    tmp = report_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(report_path)
    log(f"stored {report['version']}: grasp IoU {before['grasp_iou']} -> {after['grasp_iou']}")
    return report


def dataset_digest(root: Path | str) -> str:
    """sha256 of a dataset's manifest: which samples an adaptation read."""
    return hashlib.sha256((Path(root) / "manifest.json").read_bytes()).hexdigest()
