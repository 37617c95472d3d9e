"""Model cards written from a training summary and an evaluation report (no hand copying)."""

from __future__ import annotations

import json
from pathlib import Path

from perception_nodes.inference.onnx_model import read_manifest, sha256_of, write_manifest


def write_model_card(name: str, onnx_path: Path, train_summary: Path, command: str,
                     eval_report: Path | list[Path] | None, eval_command: str | list[str],
                     method: str, out: Path) -> None:
    """Markdown card: data, seed, exact command, training curve end, metrics (of each
    evaluation report, e.g. ``test`` and ``novel``), hash."""
    summary = json.loads(Path(train_summary).read_text())
    args, last = summary["args"], summary["log"][-1]
    split = args.get("split", "train")
    look = "the first cell's look, training items" if split.startswith("classic") else \
        "randomized bins, looks, cameras and depth sensors of the training domain; training items"
    if args.get("model") == "grasp_segmentation":
        _grasp_card(name, onnx_path, summary, command, eval_report, eval_command, method, out)
        return
    if args.get("model") == "prompt_segmenter":
        _prompt_card(name, onnx_path, summary, command, eval_report, eval_command, method, out)
        return
    if args.get("model") == "depth":
        _depth_card(name, onnx_path, summary, command, eval_report, eval_command, method, out)
        return
    if args.get("model") == "superpixel":
        arch = ("superpixel instance model of superpixel one-shot (semantic, centre and 32-d "
                "embedding heads at stride 4)")
        schedule = ""
        loss_keys = ("semantic", "centre", "attract", "repel", "reg")
    else:
        kind = ("single-hypothesis baseline" if args["latent_dim"] == 0
                else "latent, Latent-MaskRCNN")
        arch = f"latent_dim {args['latent_dim']} ({kind})"
        schedule = f", KL warm-up {args['kl_warmup']} to beta {args['kl_max']}"
        loss_keys = ("fg", "heatmap", "offsets", "kl")
    lines = [
        f"# {name}", "",
        _file_line(onnx_path),
        f"- architecture: `perception_nodes/learning/`, {arch}, feature width {args['width']},"
        f" input {args['height']}x{args['width_px']} {_inputs(args)}",
        f"- data: simulated cell, `{split}` split seeds 0-{args['scenes'] - 1} ({look}), "
        f"made with `perception dataset --split {split} --count {args['scenes']}`",
        f"- augmentation: {_augmentation(args)}",
        *_extra_data_lines(args),
        f"- seed {args['seed']}; {summary['steps']} steps of batch {args['batch']}, AdamW lr "
        f"{args['lr']} cosine{schedule}; "
        f"{summary['train_seconds'] / 60:.0f} min on {args['threads']} CPU thread(s)",
        f"- command: `{command}`",
        "- last training losses: " + ", ".join(f"{k} {last[k]:.4g}" for k in loss_keys),
        _onnx_check_line(summary),
    ]
    if "quantization" in summary:
        q = summary["quantization"]
        lines.append(f"- quantized after training: {q['method']}, calibrated on "
                     f"{q['calibration']}; max |int8 - float| on a calibration scene "
                     f"{q['max_abs_diff_on_a_calibration_scene']:.2g} (command in the README)")
    reports = eval_report if isinstance(eval_report, list) else \
        ([] if eval_report is None else [eval_report])
    commands = eval_command if isinstance(eval_command, list) else [eval_command] * len(reports)
    for path, cmd in zip(reports, commands, strict=True):
        lines += _metric_lines(json.loads(Path(path).read_text()), method, cmd)
    out.write_text("\n".join(lines) + "\n")


def _inputs(args: dict) -> str:
    if args.get("inputs", "rgb") == "rgb":
        return "RGB"
    return ("RGB + height above the calibrated bin floor (`core.instance_encoding."
            "network_input`; holes filled from the nearest measured pixel)")


def _augmentation(args: dict) -> str:
    if args.get("augment", "basic") == "basic":
        return "flips and a brightness gain 0.8-1.2"
    return ("flips, brightness, per-channel gain, contrast and saturation jitter, blur, "
            "sensor noise, zoom 1.0-1.35 with a random crop, depth noise (2 mm) and holes "
            "(`learning/augment.py`, `--augment full`)")


def _metric_lines(report: dict, method: str, eval_command: str) -> list[str]:
    """The metrics of one evaluation report for a segmentation model's card."""
    other = _report_lines(report, method, eval_command)
    if other is not None:
        return other
    t = report["table_i"][method]
    head = f"## Metrics ({report['scenes']} held-out `{report['split']}` scenes, `{method}`)"
    if "frame_ms" in t:  # the superpixel evaluation
        body = (f"mAP@50 {100 * t['map50']:.1f}, mAP {100 * t['map']:.1f}, "
                f"{t['frame_ms']:.1f} ms a frame at {report['size']}")
    else:
        f = report["fig5"]["methods"][method]
        map50 = f", mAP@50 {100 * t['map50']:.1f}" if "map50" in t else ""
        body = (f"MR@HP (IoP) {100 * t['mr_at_hp']:.1f}, AR (IoG) {100 * t['ar_iog']:.1f}, "
                f"mAP {100 * t['map']:.1f}{map50}, simulated double-pick rate "
                f"{100 * f['double_pick_rate']:.2f}%, pickable area "
                f"{f['pickable_area']:.3f}, ROC AUC {report['table_iii'][method]:.3f}")
    return ["", head, "", f"{body}; command: `{eval_command}`."]


def _extra_data_lines(args: dict) -> list[str]:
    """Data beyond the labelled scenes: pasted grasp crops, outlier-exposure scenes."""
    lines = []
    if args.get("paste_crops"):
        lines.append(f"- plus: 0-{args['paste_max']} objects cut from grasps (crop bank "
                     f"`{args['paste_crops']}`) pasted onto every scene each epoch, boundaries "
                     f"inpainted {args['inpaint_px']} px (grasp self-supervision Sec. III-B; "
                     f"`perception selfsup`)")
    if args.get("outlier_exposure"):
        lines.append(f"- plus: `anomaly_train` scenes seeds 300000-"
                     f"{300000 + args['outlier_exposure'] - 1} (training items and the "
                     f"training foreign set, which is labelled 'not an item': outlier "
                     f"exposure), made with `perception dataset --split anomaly_train --count "
                     f"{args['outlier_exposure']}`")
    if args.get("init"):
        lines.append(f"- fine-tuned: initialised from the checkpoint `{args['init']}`, which "
                     "the run that wrote it makes (reproduce that run first)")
    return lines


def _report_lines(report: dict, method: str, eval_command: str) -> list[str] | None:
    """Metric lines of the Table II (instance AP) and anomaly reports; None for others."""
    rows = report.get("rows", {})
    if "foreign_instances" in report and method in rows:
        r = rows[method]
        iap = f", iAP {r['iap']:.1f}, iAP50 {r['iap50']:.1f}" if "iap" in r else ""
        split = report.get("split", "anomaly_test")
        kind = "training" if split == "anomaly_train" else "held-out"
        return ["", f"## Metrics ({report['scenes']} `{split}` scenes, "
                f"{report['foreign_instances']} {kind} foreign objects)", "",
                f"{method}: pAP {r['pap']:.1f}, FPR95 {r['fpr95']:.1f}{iap}; command: "
                f"`{eval_command}`."]
    if method in rows and "ap50" in rows[method]:
        r = rows[method]
        return ["", f"## Metrics ({report['scenes']} held-out `{report['split']}` scenes, "
                "prior mean)", "", f"{method}: AP {r['ap']:.1f}, AP50 {r['ap50']:.1f}, AP75 "
                f"{r['ap75']:.1f}; command: `{eval_command}`."]
    return None


def _prompt_inputs(args: dict) -> str:
    if args.get("inputs", "rgb") == "rgb":
        return "RGB"
    plane = ", ".join(f"{v:.4f}" for v in args["floor_plane"])
    return (f"RGB + height above the tray floor (`preprocess_rgbh`; floor plane ({plane}) from "
            "the cell's calibration, carried in the checkpoint)")


def _prompt_card(name: str, onnx_path: Path, summary: dict, command: str,
                 eval_report: Path | None, eval_command: str, method: str, out: Path) -> None:
    args, last = summary["args"], summary["log"][-1]
    lines = [
        f"# {name}", "",
        _file_line(onnx_path),
        "- architecture: `perception_nodes/learning/prompt_seg_model.py` (class-agnostic "
        "point-prompted masks, our stand-in for SAM in UGainS: stride-4 unit embeddings "
        "once per image, a light dilated decoder per prompt on [embeddings, similarity to the "
        f"prompt, prompt Gaussian]), feature width {args['width']}, input "
        f"{args['height']}x{args['width_px']} {_prompt_inputs(args)}, prompts (P, 2) row/col",
        f"- data: the first {args['scenes']} scenes of each of {', '.join(args['splits'])} "
        "(training items and the training foreign set; never the held-out foreign objects), "
        f"{args['prompts']} prompts a scene (one on no object, target empty)",
        f"- seed {args['seed']}; {summary['steps']} steps of batch {args['batch']}, AdamW lr "
        f"{args['lr']} cosine; {summary['train_seconds'] / 60:.0f} min on {args['threads']} "
        "CPU thread(s); loss BCE + Dice",
        *([f"- went on from the weights of `{args['init']}` (trained by the first command "
           "below)"] if args.get("init") else []),
        f"- command: `{command}`",
        f"- last training losses: bce {last['bce']:.4g}, dice {last['dice']:.4g}",
        _onnx_check_line(summary),
    ]
    if eval_report is not None:
        lines += _report_lines(json.loads(Path(eval_report).read_text()), method,
                               eval_command) or []
    out.write_text("\n".join(lines) + "\n")


def _depth_card(name: str, onnx_path: Path, summary: dict, command: str,
                eval_report: Path | None, eval_command: str, method: str, out: Path) -> None:
    args, last = summary["args"], summary["log"][-1]
    task = (f"depth + instance offsets, {args['weighting']} weighting" if args["offsets"]
            else "depth only")
    pose = {"shared": "pose from the shared encoder",
            "separate": "pose from the separate pose network",
            "known": "camera motion known from the arm's kinematics (the sweeps' recorded "
                     "poses), so depth is learned in metres"}[args["pose"]]
    lines = [
        f"# {name}", "",
        _file_line(onnx_path),
        "- architecture: `perception_nodes/learning/depth_model.py` (mono-depth + instances "
        "Sec. III: "
        "shared encoder-decoder with MTAN soft attention per task and decoder stage, 4-scale "
        f"disparity), {task}, {pose}, input {args['height']}x{args['width_px']} RGB, output "
        "depth (up to scale unless the motion was known)",
        f"- data: the first {args['sequences']} camera sweeps of `depth_train` (training items; "
        f"seeds 600000-{600000 + args['sequences'] - 1}), made with `perception dataset "
        f"--split depth_train --count {args['sequences']}`; self-supervised (SSIM alpha "
        f"{args['ssim_alpha']} + L1, min over t-1 and t+1, auto-masking, smoothness "
        f"{args['smoothness']}); ground-truth depth never read",
        f"- seed {args['seed']}; {summary['steps']} steps of batch {args['batch']}, AdamW lr "
        f"{args['lr']} cosine; {summary['train_seconds'] / 60:.0f} min on {args['threads']} "
        "CPU thread(s)",
        f"- command: `{command}`",
        "- last training losses: " + ", ".join(f"{k} {last[k]:.4g}" for k in
                                               ("depth", "offsets") if k in last),
        _onnx_check_line(summary),
    ]
    if eval_report is not None:
        report = json.loads(Path(eval_report).read_text())
        t = report["table1"][method]
        fp = report["floor_plane_scale"][method]
        photo = report["stereo_motorcycle"][method]
        lines += ["", f"## Metrics ({report['sequences']} held-out `depth_test` sweeps; "
                  f"{report['scenes']} held-out `test` scenes)", "",
                  f"Median-scaled, cap {report['cap_m']} m: AbsRel {t['abs_rel']:.3f}, RMSE "
                  f"{t['rmse']:.4f} m, d<1.25 {t['a1']:.3f}. Scaled from the tray floor (no "
                  f"ground truth): AbsRel {fp['floor_plane']['abs_rel']:.3f}, d<1.25 "
                  f"{fp['floor_plane']['a1']:.3f}, median scale error "
                  f"{100 * fp['scale_error_median']:.1f} %. Real photo (stereo_motorcycle, "
                  f"median-scaled): AbsRel {photo['abs_rel']:.3f}, d<1.25 {photo['a1']:.3f}. "
                  f"Command: `{eval_command}`."]
    out.write_text("\n".join(lines) + "\n")


def _file_line(onnx_path: Path) -> str:
    return (f"- file: `{onnx_path.name}`, {onnx_path.stat().st_size / 1e6:.1f} MB, sha256 "
            f"`{sha256_of(onnx_path)}`")


def _onnx_check_line(summary: dict) -> str:
    return (f"- ONNX Runtime check after export: max |onnx - torch| = "
            f"{summary['onnx_max_abs_diff']:.2g}")


def _grasp_card(name: str, onnx_path: Path, summary: dict, command: str,
                eval_report: Path | list[Path] | None, eval_command: str | list[str],
                method: str, out: Path) -> None:
    args, last = summary["args"], summary["log"][-1]
    if isinstance(eval_report, list):  # the CLI's repeatable --eval-report: the first
        eval_report = eval_report[0] if eval_report else None
        eval_command = eval_command[0] if eval_command else ""
    seeds = args["grasp_seeds"]
    lines = [
        f"# {name}", "",
        _file_line(onnx_path),
        f"- architecture: `perception_nodes/learning/grasp_seg_model.py` (grasp self-supervision "
        f"Sec. III-A:"
        f" input [before, after, before - after, grasp mask], stride-4 FPN-style features, two"
        f" gated residual blocks with transposed convolutions, visible and amodal masks), "
        f"feature width {args['width']}, input the {args['window']} px window around the cups",
        f"- data: {len(seeds)} labelled successful grasps of the simulated cell's `train` "
        f"split (training items; scene seeds {seeds[0]}-{seeds[-1]}; `{args['data']}`: "
        f"{_grasp_look(args['data'])}), made with `perception grasp-data` "
        f"([docs/results](../docs/results/)); augmentation "
        f"{'on' if args['augment'] else 'off'}",
        f"- seed {args['seed']}; {summary['steps']} steps of batch {args['batch']}, AdamW lr "
        f"{args['lr']} cosine; {summary['train_seconds'] / 60:.0f} min on {args['threads']} "
        f"CPU thread(s); loss: Eq. 2, six weightings",
        f"- command: `{command}`",
        f"- last training loss: total {last['total']:.4g}",
        _onnx_check_line(summary),
    ]
    if eval_report is not None:
        report = json.loads(Path(eval_report).read_text())
        r, f = report["rows"][method], report["rows"][f"{method}-Filter"]
        split = report.get("split", "test")
        lines += ["", f"## Metrics ({report['grasps']} held-out grasps, {split} split)", "",
                  f"{method}: mIoU {r['miou']:.1f}, error {r['error']:.1f} %; with the filters "
                  f"mIoU {f['miou']:.1f}, error {f['error']:.1f} %, recall {f['recall']:.1f} %;"
                  f" command: `{eval_command}`."]
    out.write_text("\n".join(lines) + "\n")


def _grasp_look(data: str) -> str:
    if "randomized" in data:
        return "randomized bins, looks and cameras (`--look randomized`)"
    return "the first cell's look"


def publish_model(name: str, run_dir: Path, command: str, models_dir: Path,
                  eval_report: Path | list[Path] | None = None,
                  eval_command: str | list[str] = "",
                  method: str = "confidence_mask") -> Path:
    """Copy a training run's ONNX into ``models_dir/NAME.onnx`` with its training summary and
    a model card, and list it in ``manifest.yaml`` with its sha256 (written atomically)."""
    import shutil


    run_dir, models_dir = Path(run_dir), Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    onnx = models_dir / f"{name}.onnx"
    shutil.copyfile(run_dir / "model.onnx", onnx)
    summary = models_dir / f"{name}.train.json"
    shutil.copyfile(run_dir / "summary.json", summary)
    card = models_dir / f"{name}.md"
    write_model_card(name, onnx, summary, command, eval_report, eval_command, method, card)
    entries = read_manifest(models_dir)
    entries[name] = {"file": onnx.name, "sha256": sha256_of(onnx), "card": card.name}
    write_manifest(models_dir, entries, "Every model the nodes can load: name -> file, "
                   "sha256, model card. See README.md here.")
    return card
