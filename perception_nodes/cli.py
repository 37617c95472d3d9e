"""The `perception` command: bringup, demo, record, replay, dataset, train, bench."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
import time
from pathlib import Path


def _cmd_bringup(args: argparse.Namespace) -> int:
    from perception_nodes.bringup import Bringup, parse_overrides

    nodes = args.nodes.split(",") if args.nodes else None
    stop = threading.Event()  # SIGINT/SIGTERM (launch, Ctrl-C, even where SIGINT is ignored)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Bringup(args.config or None, nodes=nodes, overrides=parse_overrides(args.set),
                 watchdog_timeout_s=args.watchdog_timeout,
                 overlays=[args.cell] if args.cell else []) as bringup:
        bringup.start()
        try:
            bringup.run_for(args.duration if args.duration > 0 else float("inf"), stop)
        except RuntimeError as exc:  # the executor died: every node stopped
            print(f"perception bringup: {exc}; exiting with status 1", file=sys.stderr)
            return 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one must not cut shutdown
    return 0


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--set``: the parameter file and per-node overrides of the commands
    that run the stack (bringup, demo, soak)."""
    parser.add_argument("--config", default="",
                        help="parameter file (default: the package's config/perception.yaml)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NODE.PARAM:=VALUE")


def _cmd_soak(args: argparse.Namespace) -> int:
    from perception_nodes.bringup import parse_overrides
    from perception_nodes.eval.soak import soak, write_report

    result = soak(args.minutes, args.config or None, parse_overrides(args.set),
                  warmup_s=args.warmup_s, sample_s=args.sample_s)
    write_report(result, Path(args.out) if args.out else None)
    print(json.dumps({k: result[k] for k in ("picks", "picks_per_minute",
                                             "rss_growth_after_warmup", "latency_drift",
                                             "targets")}), file=sys.stderr)
    return 0 if result["passed"] else 1


def _cmd_picks(args: argparse.Namespace) -> int:
    from perception_nodes.bringup import parse_overrides
    from perception_nodes.eval.closed_loop import run_picks
    from perception_nodes.eval.soak import write_report

    result = run_picks(args.picks, args.config or None, parse_overrides(args.set),
                       args.swap_model, args.timeout_s)
    write_report(result, Path(args.out) if args.out else None)
    print(json.dumps({k: result[k] for k in ("picks", "success", "double_pick",
                                             "empty_grasp")}), file=sys.stderr)
    return 0 if result["picks"] >= args.picks else 1


def _cmd_store(args: argparse.Namespace) -> int:
    from perception_nodes.inference.onnx_model import read_manifest
    from perception_nodes.learning.model_store import add_version, versions

    if args.action == "add":
        if not args.model:
            raise SystemExit("perception store add needs --model FILE.onnx")
        card = Path(args.card).read_text() if args.card else ""
        print(add_version(args.store, args.name, args.model, card, args.checkpoint or None))
        return 0
    entries = read_manifest(args.store)
    for version in versions(args.store, args.name):
        print(f"{version}  {entries[version]['sha256'][:16]}  {entries[version]['file']}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from perception_nodes.calibration import calibrate as cal

    if args.bag:
        frames = cal.frames_from_bag(args.bag, args.depth_topic, args.info_topic, args.frames)
    elif args.folder:
        frames = cal.frames_from_folder(args.folder, args.frames)
    elif args.sim_seed is not None:
        frames = cal.frames_from_sim(args.sim_seed, args.sim_look, args.frames)
    else:
        frames = cal.frames_from_topics(args.depth_topic, args.info_topic, args.frames,
                                        args.timeout)
    if args.check:
        report = cal.run_check(frames, args.out)
        print(json.dumps(report, indent=2))
        return 0 if report["matches"] else 1
    print(json.dumps(cal.run_calibrate(frames, args.out, args.margin), indent=2))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    import rclpy

    from perception_nodes.ros.doctor import diagnose, format_report

    rclpy.init()
    try:
        report = diagnose(None, args.namespace, args.seconds)
    finally:
        rclpy.try_shutdown()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if report["problems"] else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from perception_nodes.bringup import parse_overrides
    from perception_nodes.eval.demo import run_demo

    run_dir = run_demo(args.duration, Path(args.out), args.config or None,
                       parse_overrides(args.set))
    summary = json.loads((run_dir / "summary.json").read_text())
    print(json.dumps(summary["picks"]), file=sys.stderr)
    print(f"demo run written to {run_dir} (bag: {run_dir / 'bag'}, overlays: "
          f"{run_dir / 'overlays'}, {summary['overlays']} images)")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from perception_nodes.ros.bags import BagRecorder

    rclpy.init()
    node = Node("perception_recorder")
    topics = {}
    deadline = time.monotonic() + args.discovery_s
    wanted = [t if t.startswith("/") else "/" + t for t in args.topics]
    while time.monotonic() < deadline and len(topics) < len(wanted):
        for name, types in node.get_topic_names_and_types():
            if (name in wanted or not wanted) and name not in topics:
                topics[name] = types[0]
        time.sleep(0.1)
    if not topics:
        print("no matching topics found", file=sys.stderr)
        return 1
    recorder = BagRecorder(node, Path(args.output), topics, storage=args.storage)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + (args.duration if args.duration > 0 else float("inf"))
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    path = recorder.close()
    print(json.dumps({"bag": str(path), "messages": recorder.counts}))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.node import Node

    from perception_nodes.ros.bags import BagPlayer

    rclpy.init()
    node = Node("perception_player")
    player = BagPlayer(node, Path(args.bag), rate=args.rate,
                       topics=args.topics or None)
    deadline = time.monotonic() + args.wait_subscribers
    while time.monotonic() < deadline and not all(
            p.get_subscription_count() for p in player.publishers.values()):
        time.sleep(0.05)
    time.sleep(args.delay)  # give subscribers time to discover the publishers
    stop = threading.Event()
    try:
        while True:
            player.play(stop)
            if not args.loop:
                break
    except KeyboardInterrupt:
        pass
    player.flush()
    print(json.dumps({"published": player.published}))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from perception_nodes.sim.dataset import generate
    from perception_nodes.sim.sequences import SEQUENCE_SPLITS, generate_sequences

    if args.split in SEQUENCE_SPLITS:
        paths = generate_sequences(args.out, args.split, args.count, args.start,
                                   args.width or 160, args.height or 120)
    else:
        paths = generate(args.out, args.split, args.count, args.start, args.width or 320,
                         args.height or 240, args.jobs)
    print(json.dumps({"split": args.split, "scenes": len(paths),
                      "folder": str(Path(args.out) / args.split)}))
    return 0


def _row_models(spec: str) -> dict[str, str]:
    """``"ROW=path,ROW2=path2"`` -> ``{ROW: path, ...}``; SystemExit on an item without '='."""
    items = [item for item in spec.split(",") if item]
    bad = [item for item in items if "=" not in item]
    if bad:
        raise SystemExit(f"--models items must be 'row name=model.onnx', got {bad}")
    return dict(item.split("=", 1) for item in items)


def _cmd_eval_bag(args: argparse.Namespace) -> int:
    from perception_nodes.eval.bag_eval import (
        BagTopics,
        evaluate_bag,
        markdown,
        parse_configs,
        write_outputs,
    )

    if not args.target:
        print("perception eval bag BAG --configs ...: name the bag", file=sys.stderr)
        return 2
    topics = BagTopics(args.color_topic, args.depth_topic, args.info_topic, args.labels_topic)
    out = Path(args.out if args.out != "runs/eval/segmentation" else "runs/eval/bag")
    report = evaluate_bag(args.target, parse_configs(args.configs), topics,
                          args.models_dir, out / "annotated_bag" if args.annotate else None)
    write_outputs(report, out)
    print(json.dumps({k: v for k, v in report.items() if k != "per_frame"}, indent=2)
          if args.json else markdown(report))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.capability == "bag":
        return _cmd_eval_bag(args)
    if args.capability == "grasp-segmentation":
        from perception_nodes.eval.grasp_seg_eval import GRASP_MODELS
        from perception_nodes.eval.grasp_seg_eval import run_eval as run_grasp
        from perception_nodes.inference.onnx_model import ModelError, resolve_model

        models = {}
        for row, name in GRASP_MODELS.items():
            try:
                models[row] = str(resolve_model(name))
            except ModelError:
                pass  # not trained yet: the baselines' rows only
        out = args.out if args.out != "runs/eval/segmentation" else \
            "runs/eval/grasp_segmentation"
        report = run_grasp(args.grasp_data, models, out, args.grasp_split)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if args.capability == "adaptation":
        from perception_nodes.eval.adaptation import run as run_adaptation
        from perception_nodes.eval.adaptation import table as adaptation_table

        out = args.out if args.out != "runs/eval/segmentation" else None
        report = run_adaptation(args.target or "runs/adapt", out)
        print(json.dumps(report) if args.json else adaptation_table(report))
        return 0
    if args.capability == "anomaly":
        from perception_nodes.eval.anomaly_eval import run_eval as run_anomaly

        out = args.out if args.out != "runs/eval/segmentation" else "runs/eval/anomaly"
        report = run_anomaly(args.data, args.anomaly_segmenter, args.prompt_model,
                             args.scenes, out, args.latent or None, seed=args.seed,
                             split=args.anomaly_split)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if args.capability == "instance-ap":
        from perception_nodes.eval.selfsup import table_ii

        models = _row_models(args.models or "latent=models/latent_segmenter.onnx")
        out = args.out if args.out != "runs/eval/segmentation" else "runs/eval/instance_ap"
        report = table_ii(models, args.data, args.scenes, out)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if args.capability == "depth":
        from perception_nodes.eval.depth_eval import run_eval as run_depth

        models = _row_models(args.models or "mono_depth=models/mono_depth.onnx")
        out = args.out if args.out != "runs/eval/segmentation" else "runs/eval/depth"
        report = run_depth(args.data, models, args.sequences, args.scenes, args.cap, out)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if args.capability == "superpixel":
        from perception_nodes.eval.superpixel_eval import run_eval as run_superpixel_eval

        out = args.out if args.out != "runs/eval/segmentation" else "runs/eval/superpixel"
        report = run_superpixel_eval(args.data, args.split, args.model, args.scenes, out)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    from perception_nodes.eval.segmentation_eval import run_eval

    report = run_eval(args.data, args.split, args.latent, args.baseline, args.scenes, args.out,
                      args.samples, args.seed, args.upsample, args.superpixel or None)
    summary = {k: report[k] for k in ("scenes", "table_i", "fig5", "table_iii")}
    if args.photo:
        from perception_nodes.eval.segmentation_eval import photo_check

        summary["photo"] = photo_check(args.latent, args.baseline,
                                       str(Path(args.out) / f"{args.photo}.png"), args.photo,
                                       args.samples, args.seed)
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


def _cmd_grasp_data(args: argparse.Namespace) -> int:
    from perception_nodes.sim.grasp_episodes import save_episodes

    n = save_episodes(args.out, args.split, args.count, args.start, args.look)
    print(json.dumps({"split": args.split, "episodes": n, "folder": f"{args.out}/{args.split}"}))
    return 0


def _cmd_selfsup(args: argparse.Namespace) -> int:
    from perception_nodes.eval.selfsup import run_selfsup

    report = run_selfsup(args.grasps, args.masks, args.grasp_model, args.filter,
                         args.inpaint_px, args.scenes, args.steps, args.threads, args.seed,
                         args.out, args.count, args.start, args.eval_scenes, args.data)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _cmd_pick_eval(args: argparse.Namespace) -> int:
    from perception_nodes.eval.pick_eval import run_pick_eval

    modes = args.mode.split(",")
    from perception_nodes.sim.dataset import SPLIT_SEEDS

    first_seed = args.first_seed if args.first_seed >= 0 else SPLIT_SEEDS[args.split][0]
    names = dict(item.split("=", 1) for item in args.model_names.split(",") if item)
    report = run_pick_eval(modes, args.episodes, args.picks_per_scene, first_seed,
                           args.jobs, args.out or None, args.planner, args.depth,
                           args.depth_model or None, args.split, args.floor_rule, names)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _cmd_sim_gallery(args: argparse.Namespace) -> int:
    from perception_nodes.eval.sim_gallery import make_gallery

    print(make_gallery(args.out))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from perception_nodes.eval.bench import run_benches

    result = run_benches(args.only.split(",") if args.only else None)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _cmd_publish_model(args: argparse.Namespace) -> int:
    from perception_nodes.learning.model_card import publish_model

    reports = [Path(r) for r in args.eval_report]
    commands = args.eval_command or [""] * len(reports)
    if len(commands) != len(reports):
        raise SystemExit("give one --eval-command per --eval-report")
    card = publish_model(args.name, Path(args.run), args.train_command, Path(args.models),
                         reports, commands, args.method)
    print(json.dumps({"model": args.name, "card": str(card)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="perception", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bringup", help="run the configured nodes in one process")
    _add_config_args(b)
    b.add_argument("--nodes", default="", help="comma-separated subset of nodes")
    b.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until Ctrl-C")
    b.add_argument("--cell", default="", help="the cell file of `perception calibrate`, "
                   "overlaid on the parameter file")
    b.add_argument("--watchdog-timeout", type=float, default=60.0,
                   help="a callback running this long (s), or a dead executor, ends the "
                   "process with status 3 for its supervisor to restart (0 = off)")
    b.set_defaults(func=_cmd_bringup)

    ca = sub.add_parser("calibrate", help="the bin floor plane and workspace polygon from the "
                        "empty bin, written as a cell file; --check: does the scene still "
                        "match it (exit 1 if not)")
    source = ca.add_mutually_exclusive_group()
    source.add_argument("--bag", default="", help="read the depth frames from this bag")
    source.add_argument("--folder", default="", help="*.png 16-bit mm or *.npy m depth "
                        "frames with camera_info.yaml")
    source.add_argument("--sim-seed", type=int, default=None,
                        help="the simulated cell's empty bin of this scene")
    ca.add_argument("--sim-look", default="train", choices=("classic", "train", "novel"))
    ca.add_argument("--depth-topic", default="/camera/depth/image_raw")
    ca.add_argument("--info-topic", default="/camera/color/camera_info")
    ca.add_argument("--frames", type=int, default=5, help="depth frames (median) to fit")
    ca.add_argument("--timeout", type=float, default=30.0, help="live topics: seconds to wait")
    ca.add_argument("--margin", type=float, default=0.01,
                    help="workspace inset from the walls (m)")
    ca.add_argument("--out", default="config/cell.yaml", help="the cell file to write "
                    "(with --check: to check against)")
    ca.add_argument("--check", action="store_true")
    ca.set_defaults(func=_cmd_calibrate)

    dr = sub.add_parser("doctor", help="for the running nodes: each input's publishers, QoS "
                        "compatibility, rate, encoding, frame and calibration, and every "
                        "problem with its fix (exit 1 if any)")
    dr.add_argument("--namespace", default="/", help="the stack's namespace (e.g. cell1)")
    dr.add_argument("--seconds", type=float, default=3.0, help="how long to sample inputs")
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(func=_cmd_doctor)

    so = sub.add_parser("soak", help="the default bringup for N minutes: picks per minute, RSS "
                        "growth, latency drift and diagnostics as JSON (exit 1 on a missed "
                        "target)")
    so.add_argument("--minutes", type=float, default=10.0)
    so.add_argument("--warmup-s", type=float, default=60.0,
                    help="RSS growth and latency drift are measured after this")
    so.add_argument("--sample-s", type=float, default=10.0)
    so.add_argument("--out", default="", help="JSON report file (default: stdout)")
    _add_config_args(so)
    so.set_defaults(func=_cmd_soak)

    st = sub.add_parser("store", help="a model store: list the versions of a model, or add a "
                        "file as its next version (docs/adaptation.md)")
    st.add_argument("action", choices=("list", "add"))
    st.add_argument("--store", required=True, help="the store folder")
    st.add_argument("--name", default="latent_segmenter")
    st.add_argument("--model", default="", help="add: the ONNX file")
    st.add_argument("--checkpoint", default="", help="add: its training checkpoint")
    st.add_argument("--card", default="", help="add: a Markdown card file")
    st.set_defaults(func=_cmd_store)

    pk = sub.add_parser("picks", help="the stack picks N times in the simulated cell: success, "
                        "double picks, empty grasps with 95%% intervals as JSON (exit 1 if "
                        "fewer picks came before --timeout-s)")
    pk.add_argument("--picks", type=int, default=300)
    pk.add_argument("--swap-model", default="", metavar="NAME@vN",
                    help="set segmentation's model to this through its parameter service "
                    "once the stack runs; only picks after the swap count")
    pk.add_argument("--timeout-s", type=float, default=7200.0)
    pk.add_argument("--out", default="", help="JSON report file (default: stdout)")
    _add_config_args(pk)
    pk.set_defaults(func=_cmd_picks)

    d = sub.add_parser("demo", help="the stack on the simulated cell, recorded to a run folder")
    d.add_argument("--duration", type=float, default=45.0)
    d.add_argument("--out", default="runs")
    _add_config_args(d)
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser("record", help="record live topics to a rosbag2 bag")
    r.add_argument("output", help="bag folder to create")
    r.add_argument("topics", nargs="*", help="topics (default: all discovered)")
    r.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until Ctrl-C")
    r.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    r.add_argument("--discovery-s", type=float, default=5.0,
                   help="how long to wait for the topics to appear")
    r.set_defaults(func=_cmd_record)

    p = sub.add_parser("replay", help="publish a bag at its recorded rate")
    p.add_argument("bag")
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--delay", type=float, default=1.0, help="seconds before the first message")
    p.add_argument("--wait-subscribers", type=float, default=0.0, metavar="S",
                   help="first wait up to S seconds until every topic has a subscriber")
    p.add_argument("--topics", nargs="*", default=[])
    p.set_defaults(func=_cmd_replay)

    s = sub.add_parser("dataset", help="render simulated scenes of a split to .npz files")
    s.add_argument("--split", required=True,
                   choices=("train", "val", "test", "novel", "novel_cell", "classic_train",
                            "classic_val",
                            "classic_test", "anomaly_train", "anomaly_test", "anomaly_novel",
                            "depth_train", "depth_test"))
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--start", type=int, default=0, help="offset into the split's seed range")
    s.add_argument("--out", default="data/sim")
    s.add_argument("--width", type=int, default=0,
                   help="image width (default 320; 160 for the depth_* camera sweeps)")
    s.add_argument("--height", type=int, default=0, help="(default 240; 120 for sweeps)")
    s.add_argument("--jobs", type=int, default=1,
                   help="processes rendering side by side (the files do not depend on it)")
    s.set_defaults(func=_cmd_dataset)

    e = sub.add_parser("eval", help="evaluate a capability on a generated split")
    e.add_argument("capability", choices=("segmentation", "superpixel", "grasp-segmentation",
                                          "instance-ap", "anomaly", "depth", "bag",
                                          "adaptation"))
    e.add_argument("target", nargs="?", default="", help="bag: the bag (MCAP or sqlite3); "
                   "adaptation: the experiment folder (default runs/adapt)")
    e.add_argument("--configs", default="geometric=mode:geometric",
                   help="bag: 'NAME=mode:M,model:X,param:=value;NAME2=...'")
    e.add_argument("--models-dir", default="", help="bag: folder of manifest.yaml")
    e.add_argument("--color-topic", default="/camera/color/image_raw")
    e.add_argument("--depth-topic", default="/camera/depth/image_raw")
    e.add_argument("--info-topic", default="/camera/color/camera_info")
    e.add_argument("--labels-topic", default="/sim/instance_labels",
                   help="bag: ground-truth instance labels (mono16), when recorded")
    e.add_argument("--annotate", action="store_true",
                   help="bag: also write OUT/annotated_bag with eval/NAME/... topics")
    e.add_argument("--anomaly-segmenter", default="models/anomaly_segmenter.onnx",
                   help="anomaly: the segmenter trained with outlier exposure (--latent is "
                   "the one without, for its pixel-score row)")
    e.add_argument("--prompt-model", default="models/prompt_segmenter.onnx",
                   help="anomaly: the point-prompted mask model")
    e.add_argument("--anomaly-split", default="anomaly_test",
                   choices=("anomaly_test", "anomaly_novel", "anomaly_train"),
                   help="anomaly: held-out foreign objects, or the training ones (fit)")
    e.add_argument("--models", default=None,
                   help="instance-ap, depth: comma-separated 'row name=model.onnx' (the "
                   "table's rows; default the committed latent_segmenter, mono_depth)")
    e.add_argument("--sequences", type=int, default=100,
                   help="depth: held-out camera sweeps for Table I")
    e.add_argument("--cap", type=float, default=2.0, help="depth: depth cap (m)")
    e.add_argument("--grasp-data", default="data/grasps_sim",
                   help="grasp-segmentation: perception grasp-data root")
    e.add_argument("--grasp-split", default="test", choices=("train", "test", "novel"),
                   help="grasp-segmentation: the folder of held-out grasps under the root")
    e.add_argument("--split", choices=("val", "test", "novel", "classic_val", "classic_test"),
                   default="test")
    e.add_argument("--data", default="data/sim")
    e.add_argument("--scenes", type=int, default=300)
    e.add_argument("--latent", default="models/latent_segmenter.onnx")
    e.add_argument("--baseline", default="models/baseline_segmenter.onnx")
    e.add_argument("--model", default="models/superpixel_segmenter.onnx",
                   help="superpixel: the model")
    e.add_argument("--superpixel", default="models/superpixel_segmenter_int8.onnx",
                   help="segmentation: the superpixel mode's model, evaluated beside the "
                   "latent modes ('' to skip)")
    e.add_argument("--samples", type=int, default=8)
    e.add_argument("--upsample", choices=("superpixel", "nearest"), default="superpixel",
                   help="segmentation: how grid masks reach the image (superpixel: as the "
                   "node publishes them; nearest: as evaluated before 2026-11-30)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="runs/eval/segmentation")
    e.add_argument("--photo", default="coins",
                   help="also run on this scikit-image photo ('' to skip)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_eval)

    sub.add_parser("train", help="train the segmentation model (see `perception train -h`)",
                   add_help=False)
    sub.add_parser("quantize", add_help=False,
                   help="int8 static quantization of a run's ONNX (see `perception quantize -h`)")
    sub.add_parser("train-prompt-seg", add_help=False,
                   help="train the point-prompted mask model for anomaly instances (see "
                   "`perception train-prompt-seg -h`)")
    sub.add_parser("train-grasp-seg", add_help=False,
                   help="train the grasp segmentation model (see `perception train-grasp-seg "
                   "-h`)")
    sub.add_parser("train-superpixel", add_help=False,
                   help="train the superpixel model (see `perception train-superpixel -h`)")
    sub.add_parser("adapt", add_help=False,
                   help="adapt the deployed instance model to a cell's items from its "
                   "grasp_capture dataset into a new model-store version (see `perception "
                   "adapt -h`)")
    sub.add_parser("train-depth", add_help=False,
                   help="train the monocular depth model (see `perception train-depth -h`)")

    m = sub.add_parser("publish-model", help="copy a training run into models/ with its "
                       "model card and manifest entry (sha256)")
    m.add_argument("name", help="model name, e.g. latent_segmenter")
    m.add_argument("--run", required=True, help="training output folder (perception train)")
    m.add_argument("--train-command", required=True, help="the exact training command")
    m.add_argument("--models", default="models")
    m.add_argument("--eval-report", action="append", default=[],
                   help="report.json of perception eval (repeat: test, novel)")
    m.add_argument("--eval-command", action="append", default=[],
                   help="the command that wrote each --eval-report, in the same order")
    m.add_argument("--method", default="confidence_mask", help="the method its metrics show")
    m.set_defaults(func=_cmd_publish_model)

    g = sub.add_parser("grasp-data", help="labelled grasps in the sim cell (before, after, "
                       "grasp mask, visible and amodal masks) for grasp segmentation")
    g.add_argument("--split", default="train", choices=("train", "val", "test", "novel"))
    g.add_argument("--look", default="classic", choices=("classic", "randomized"),
                   help="the first cell's look, or the split's randomized bins and cameras "
                   "(novel: the held-out domain)")
    g.add_argument("--count", type=int, default=200)
    g.add_argument("--start", type=int, default=0, help="first scene of the split")
    g.add_argument("--out", default="data/grasps_sim")
    g.set_defaults(func=_cmd_grasp_data)

    u = sub.add_parser("selfsup", help="grasps -> grasped-item masks -> cut-and-paste -> "
                       "retrained instance model -> AP on held-out scenes (grasp "
                       "self-supervision)")
    u.add_argument("--grasps", default="data/grasps_selfsup",
                   help="grasp episodes (perception grasp-data root); collected if missing")
    u.add_argument("--count", type=int, default=300, help="grasps to collect and use")
    u.add_argument("--start", type=int, default=5000,
                   help="first test-split scene of the grasps (the evaluation uses 0..299)")
    u.add_argument("--masks", choices=("subtract", "grasp"), default="grasp")
    u.add_argument("--grasp-model", default="models/grasp_segmenter_100.onnx")
    u.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="keep only masks passing the Sec. III-B.1 filters")
    u.add_argument("--inpaint-px", type=int, default=5, help="0: no inpainting")
    u.add_argument("--scenes", type=int, default=100, help="labelled training scenes")
    u.add_argument("--steps", type=int, default=800)
    u.add_argument("--threads", type=int, default=1)
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--data", default="data/sim")
    u.add_argument("--eval-scenes", type=int, default=300)
    u.add_argument("--out", default="runs/selfsup/paste_grasp_inpaint")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=_cmd_selfsup)

    k = sub.add_parser("pick-eval", help="closed-loop picks in the simulated cell per "
                       "segmentation configuration (Latent-MaskRCNN Table II on our cell)")
    k.add_argument("--episodes", type=int, default=500, help="executed picks per configuration")
    k.add_argument("--mode", default="baseline,prior_mean,confidence_mask,superpixel",
                   help="comma-separated configurations: baseline, prior_mean, "
                   "confidence_mask, superpixel, geometric, ground_truth")
    k.add_argument("--picks-per-scene", type=int, default=5)
    k.add_argument("--split", default="test", choices=("test", "novel", "classic_test"),
                   help="scenes (look and items) to pick from")
    k.add_argument("--floor-rule", action=argparse.BooleanOptionalAction, default=True,
                   help="give the planner the calibrated floor plane (--no-floor-rule: the "
                   "planner before 2026-11-30, as the starting-point tables ran)")
    k.add_argument("--first-seed", type=int, default=-1,
                   help="first scene (default: the split's first seed)")
    k.add_argument("--jobs", type=int, default=1, help="configurations run side by side")
    k.add_argument("--planner", default="full", choices=("full", "masks_only"),
                   help="full: the grasp_regions node's planner; masks_only: cups checked "
                   "against the masks alone (ablation)")
    k.add_argument("--depth", default="sensor", choices=("sensor", "mono"),
                   help="plan on the depth camera's depth or the monocular depth model's "
                   "(metric from the calibrated floor plane)")
    k.add_argument("--depth-model", default="", metavar="ONNX",
                   help="with --depth mono: this depth model instead of the published "
                   "mono_depth")
    k.add_argument("--out", default="", help="folder for report.json, records.json, table.md")
    k.add_argument("--json", action="store_true", help="one JSON object on one line")
    k.add_argument("--model-names", default="", metavar="KIND=NAME,...",
                   help="models other than the defaults, by kind (latent, baseline, "
                   "superpixel), e.g. latent=latent_segmenter_classic")
    k.set_defaults(func=_cmd_pick_eval)

    y = sub.add_parser("sim-gallery", help="a contact sheet of randomized scenes across the "
                       "splits")
    y.add_argument("--out", default="docs/sim_gallery.png")
    y.set_defaults(func=_cmd_sim_gallery)

    c = sub.add_parser("bench", help="frames/s and latency per node and for transport")
    c.add_argument("--json", action="store_true", help="one JSON object on one line")
    c.add_argument("--only", default="", help="comma-separated bench names")
    c.set_defaults(func=_cmd_bench)
    return ap


# subcommands that are scripts with their own parser: name -> module with main(argv)
SCRIPTS = {
    "train": "perception_nodes.learning.train",
    "quantize": "perception_nodes.learning.quantize",
    "train-grasp-seg": "perception_nodes.learning.grasp_seg_train",
    "train-prompt-seg": "perception_nodes.learning.prompt_seg_train",
    "train-superpixel": "perception_nodes.learning.superpixel_train",
    "train-depth": "perception_nodes.learning.depth_train",
    "adapt": "perception_nodes.learning.adapt",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SCRIPTS:  # the script owns its arguments (and imports torch)
        importlib.import_module(SCRIPTS[argv[0]]).main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
