"""Self-supervised instance segmentation from the cell's own grasps (grasp self-supervision
Sec. III-B, V).

    perception selfsup --masks grasp --inpaint-px 5 --out runs/selfsup/paste_grasp_inpaint
    perception eval instance-ap --models "100 labelled=runs/.../model.onnx,..." --json

``perception selfsup`` runs the loop end to end: collect grasps in the simulated cell
(``perception grasp-data``; skipped when the folder already holds them), keep the grasps
the suction gauge calls held (the robot knows nothing else), segment the grasped item
(image subtraction or a grasp segmentation model), optionally keep only masks that pass the
Sec. III-B.1 filters, cut the items out of the before frames into a crop bank, train the
instance model on the labelled scenes with crops pasted onto them (Sec. III-B.2/3), and
score it on the held-out split. The ground-truth masks of the grasps are read only to
report how good the crops were, never to make them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from perception_nodes.core.confidence_masks import labels_to_masks, resize_prediction
from perception_nodes.core.cut_paste import ObjectCrop, cut_object, pack_crops
from perception_nodes.core.grasp_segmentation import score_masks
from perception_nodes.core.instance_metrics import InstanceEvaluator
from perception_nodes.eval.report import write_report
from perception_nodes.inference.grasp_segmenter import GraspedItemMasker
from perception_nodes.sim.dataset import save_npz_atomic
from perception_nodes.sim.grasp_episodes import GraspEpisode, load_episodes


def grasp_masks(episodes: list[GraspEpisode], source: str, grasp_model: str | None = None,
                use_filter: bool = True) -> tuple[list[np.ndarray], list[bool]]:
    """Each episode's mask of the grasped item ``(H, W) bool`` and whether it passes the
    filters (always True with ``use_filter`` off): ``subtract`` = grey-blur subtraction with
    the contour filter (Subtract-Filter); ``grasp`` = the grasp segmentation model's visible
    mask with the occlusion, entropy and contour filters (Grasp-N-Filter)."""
    masker = GraspedItemMasker(source, grasp_model, use_filter=use_filter)
    pairs = [masker(e.before, e.after, e.grasp_mask) for e in episodes]
    return [m for m, _ in pairs], [k for _, k in pairs]


def crop_bank(episodes: list[GraspEpisode], masks: list[np.ndarray], kept: list[bool]
              ) -> list[ObjectCrop]:
    """The before frame under every kept, non-empty mask."""
    return [cut_object(e.before, m) for e, m, k in zip(episodes, masks, kept, strict=True)
            if k and m.any()]


def instance_ap(model_path: str, data_root: str = "data/sim", split: str = "classic_test",
                scenes: int = 300, seed: int = 0) -> dict[str, float]:
    """AP (IoU 0.5:0.95), AP50 and AP75 in % of a segmentation model's prior-mean prediction
    on the first ``scenes`` scenes of ``split`` (rendered if missing)."""
    from perception_nodes.inference.segmenter import SegmenterRunner
    from perception_nodes.sim.dataset import generate, load_scene

    runner = SegmenterRunner(model_path, "cpu", seed)
    ev = InstanceEvaluator()
    for path in generate(data_root, split, scenes):
        scene = load_scene(path)
        pred = resize_prediction(runner.predict(scene["rgb"], 0)[0], scene["labels"].shape)
        ev.add(pred.masks, pred.scores, labels_to_masks(scene["labels"]))
    return {"ap": 100 * ev.mean_ap(), "ap50": 100 * ev.ap_at(0.5), "ap75": 100 * ev.ap_at(0.75),
            "scenes": scenes}


def run_selfsup(grasps: str, masks: str, grasp_model: str | None, use_filter: bool,
                inpaint_px: int, scenes: int, steps: int, threads: int, seed: int, out: str,
                count: int = 300, start: int = 5000, eval_scenes: int = 300,
                data: str = "data/sim", preset: str = "default") -> dict:
    """The whole loop (module docstring); writes ``crops.npz``, ``train/`` and
    ``report.json`` into ``out``; returns the report. The grasps come from the test split's
    scenes from ``start`` on: the cell's new items, in scenes the evaluation never sees."""
    from perception_nodes.learning.train import main as train_main
    from perception_nodes.sim.grasp_episodes import save_episodes

    folder = Path(grasps) / "test"
    if len(list(folder.glob("*.npz"))) < count:
        save_episodes(grasps, "test", count, start)
    episodes = load_episodes(str(folder))[:count]
    held = [e for e in episodes if e.gauge_success]
    pred, kept = grasp_masks(held, masks, grasp_model, use_filter)
    crops = crop_bank(held, pred, kept)
    if not crops:
        raise ValueError(f"no grasped item left to paste: {len(held)} of {len(episodes)} "
                         f"grasps held, none of their {masks} masks kept")
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(run / "crops.npz", **pack_crops(crops))
    # how good the self-supervised masks were, from the sim's truth (never used to make
    # them): on the held grasps that lifted one item, and how many held ones did not
    single = [i for i, e in enumerate(held) if e.lifted == 1]
    quality = vars(score_masks([pred[i] for i in single], [held[i].visible for i in single],
                               [kept[i] for i in single]))
    summary = train_main(["--preset", preset, "--data", data, "--scenes", str(scenes),
                          "--split", "classic_train",
                          "--steps", str(steps), "--threads", str(threads), "--seed",
                          str(seed), "--paste-crops", str(run / "crops.npz"),
                          "--inpaint-px", str(inpaint_px), "--out", str(run / "train")])
    report = {
        "grasps": len(episodes), "held": len(held), "crops": len(crops),
        "masks": masks, "grasp_model": grasp_model if masks == "grasp" else None,
        "filter": use_filter, "inpaint_px": inpaint_px, "labelled_scenes": scenes,
        "steps": steps, "crop_quality": quality,
        "held_not_single": len(held) - len(single), "train_seconds": summary.get("train_seconds"),
        "model": str(run / "train" / "model.onnx"),
        "test": instance_ap(str(run / "train" / "model.onnx"), data, "classic_test",
                            eval_scenes),
    }
    (run / "report.json").write_text(json.dumps(report, indent=1))
    return report


def table_ii(models: dict[str, str], data: str = "data/sim", scenes: int = 300,
             out_dir: str | None = None) -> dict:
    """Table II rows ``{row name: onnx path}`` on the test split; writes ``report.json`` and
    ``table.md`` into ``out_dir``."""
    rows = {name: instance_ap(path, data, "classic_test", scenes)
            for name, path in models.items()}
    report = {"scenes": scenes, "split": "classic_test", "models": models, "rows": rows}
    if out_dir:
        write_report(out_dir, report, table(report))
    return report


def table(report: dict) -> str:
    """Table II as Markdown."""
    lines = ["| method | AP | AP50 | AP75 |", "|---|---|---|---|"]
    for name, r in report["rows"].items():
        lines.append(f"| {name} | {r['ap']:.1f} | {r['ap50']:.1f} | {r['ap75']:.1f} |")
    return "\n".join(lines) + "\n"
