"""Adapting to a cell's own items: capture -> adapt -> live swap on a tiny dataset, and the
pieces it is made of (checksum split, pasting with height, the loss that ignores unlabelled
pixels, training that resumes)."""

import json

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from hostile import CAPTURE_INPUTS, HostileRig, image, info
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from perception_nodes.capture.grasp_dataset import read_manifest
from perception_nodes.core.cut_paste import ObjectCrop, paste_objects
from perception_nodes.core.grasp_regions import plan_grasps
from perception_nodes.inference.onnx_model import resolve_model, sha256_of
from perception_nodes.learning import adapt
from perception_nodes.learning.adapt_data import CellPasteDataset
from perception_nodes.learning.model_store import versions
from perception_nodes.learning.train import losses
from perception_nodes.nodes.grasp_capture import GraspCaptureNode
from perception_nodes.nodes.segmentation import SegmentationNode
from perception_nodes.ros.image_conversion import image_to_numpy
from perception_nodes.ros.messages import pose_msg
from perception_nodes.sim.cell import PickingCell
from perception_nodes.sim.dataset import split_config
from perception_nodes.sim.suction import SuctionGripperSpec, execute_pick


def test_held_out_grasps_are_chosen_by_checksum_so_new_samples_move_none():
    entries = [{"sha256": f"{i * 2654435761 % 2**32:08x}" + "0" * 56} for i in range(200)]
    held = adapt.split_held_out(entries, 0.2)
    assert 20 <= sum(held) <= 60
    more = adapt.split_held_out(entries + [{"sha256": "f" * 64}], 0.2)
    assert more[:200] == held and more[200] is False


def test_a_pasted_crop_rests_on_what_lies_under_it():
    image = np.zeros((20, 20, 3), np.uint8)
    labels = np.zeros((20, 20), np.uint16)
    height = np.full((20, 20), 0.1, np.float32)  # a 10 cm tall item covers the frame
    crop = ObjectCrop(np.full((4, 4, 3), 200, np.uint8), np.ones((4, 4), bool),
                      np.full((4, 4), 0.03, np.float32))
    for seed in range(20):
        out, lab, h = paste_objects(image, labels, [crop], np.random.default_rng(seed),
                                    max_objects=1, scale_range=(1.0, 1.0), inpaint_px=0,
                                    height=height)
        np.testing.assert_allclose(h[lab > 0], 0.13, atol=1e-6)  # 3 cm on top of 10 cm
        np.testing.assert_allclose(h[lab == 0], 0.1)
    with pytest.raises(ValueError, match="heights"):
        paste_objects(image, labels, [ObjectCrop(crop.rgb, crop.mask)],
                      np.random.default_rng(0), height=height)


def _cell_frame() -> tuple[np.ndarray, np.ndarray]:
    """A 240x320 cell frame: an unlabelled item (5 cm) on a bare floor."""
    rgb = np.full((240, 320, 3), 60, np.uint8)
    height = np.zeros((240, 320), np.float32)
    rgb[100:140, 140:180] = 220
    height[100:140, 140:180] = 0.05
    return rgb, height


def test_in_a_cell_frame_only_pasted_items_and_bare_floor_are_known():
    crop = ObjectCrop(np.full((30, 30, 3), 30, np.uint8), np.ones((30, 30), bool),
                      np.full((30, 30), 0.04, np.float32))
    data = CellPasteDataset([_cell_frame()], [crop], (240, 320), (240, 320), None,
                            max_objects=3, inpaint_px=0, augmentation="basic")
    for epoch in range(6):
        data.epoch = epoch
        rgb, labels, height, known = data.scene(0)
        assert labels.dtype == np.uint16 and known.dtype == bool
        assert known[labels > 0].all()  # every pasted pixel is labelled and known
        floor = (height < 0.01) & (labels == 0)
        assert known[floor].all()
        # the frame's own item (5 cm, not pasted over) is neither labelled nor known
        item = (np.abs(height - 0.05) < 0.005) & (labels == 0)
        assert item.any() and not known[item].any()
    batch = data[0]
    assert set(batch) >= {"image", "fg", "known"} and batch["image"].shape == (4, 240, 320)


def test_the_loss_does_not_score_unknown_pixels():
    from perception_nodes.learning.model import LatentSegmenter

    torch.manual_seed(0)
    model = LatentSegmenter(latent_dim=4, width=8, in_channels=4)
    image_ = torch.rand(1, 4, 48, 64)
    h, w = 12, 16
    batch = {"image": image_, "fg": torch.zeros(1, h, w), "heatmap": torch.zeros(1, h, w),
             "offsets": torch.zeros(1, 2, h, w),
             "instance_ids": torch.zeros(1, h, w, dtype=torch.int64),
             "known": torch.ones(1, h, w)}
    batch["known"][:, :, w // 2:] = 0

    def loss(b: dict) -> dict:
        torch.manual_seed(1)  # the same latent draw for every call
        return losses(model, b, 0.0)

    ref = loss(batch)
    flipped = {**batch, "fg": batch["fg"].clone(), "heatmap": batch["heatmap"].clone()}
    flipped["fg"][:, :, w // 2:] = 1.0  # other targets where nothing is known
    flipped["heatmap"][:, 5, 12] = 0.5
    same = loss(flipped)
    assert torch.allclose(ref["fg"], same["fg"]) and torch.allclose(ref["heatmap"],
                                                                     same["heatmap"])
    known = loss({**flipped, "known": torch.ones(1, h, w)})
    assert not torch.allclose(known["fg"], ref["fg"])
    assert not torch.allclose(known["heatmap"], ref["heatmap"])


def test_training_resumes_from_its_last_state(tmp_path):
    from torch.utils.data import TensorDataset

    from perception_nodes.learning.engine import fit

    class Data(TensorDataset):
        epoch = 0

    torch.manual_seed(0)
    data = Data(torch.randn(16, 3), torch.randn(16, 1))
    cfg = {"steps": 5, "batch": 4, "lr": 0.01, "seed": 0}
    calls = []

    def step_losses(model, batch, step):
        calls.append(step)
        return {"total": ((model(batch[0]) - batch[1]) ** 2).mean()}

    state = tmp_path / "state.pt"
    fit(torch.nn.Linear(3, 1), data, cfg, step_losses, state, state_every=5)
    assert torch.load(state, weights_only=False)["step"] == 5 and calls == list(range(5))
    # the run is stopped at step 5 of 12; started again it goes on from its state
    calls.clear()
    model = torch.nn.Linear(3, 1)
    log, steps, _ = fit(model, data, {**cfg, "steps": 12}, step_losses, state)
    assert calls == list(range(5, 12)) and steps == 12 and log[-1]["step"] == 12
    saved = torch.load(state, weights_only=False)
    assert saved["step"] == 12
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


def _capture(context, dataset, picks: int = 6) -> int:
    """Picks in the simulated cell (held-out items, novel look) seen through the
    grasp_capture node exactly as a running cell feeds it; returns how many held."""
    node = GraspCaptureNode(context=context, parameter_overrides=[
        Parameter("dataset_dir", value=str(dataset)), Parameter("max_wait_frames", value=2)])
    rig = HostileRig(context, node, {**CAPTURE_INPUTS, "camera/depth/image_raw": Image})
    spec = SuctionGripperSpec()
    held, attempts = 0, 0
    try:
        with PickingCell(split_config("novel_cell", 160, 120), seed=850_000) as cell:
            seed = 850_000
            while held < picks and attempts < 30:
                attempts += 1
                frame = cell.render()
                plan = plan_grasps(frame.labels, frame.depth, frame.intrinsics, spec.layout,
                                   ignore=cell.outside_tray())
                if not plan.candidates:
                    seed += 1
                    cell.reset(seed)
                    continue
                best = plan.candidates[0]
                rig.send({"camera/color/image_raw": image(frame.rgb, "rgb8"),
                          "camera/color/camera_info": info(frame.intrinsics),
                          "camera/depth/image_raw": image(frame.depth, "32FC1")})
                stamp = rig.stamp * 10**9
                assert rig.spin_until(lambda s=stamp: node.depths.at(s) is not None and
                                      node.ring.newest()[0] == s, 5.0)
                request = PoseStamped(pose=pose_msg(best.pose))
                request.header.stamp.sec = rig.stamp
                rig.pubs["arm/pick_request"].publish(request)
                assert rig.spin_until(lambda: node.pending is not None, 5.0)
                pose = frame.camera_pose @ best.pose
                outcome = execute_pick(cell, pose[:3, 3], pose[:3, :3], spec)
                rig.pubs["arm/suction_gauge"].publish(
                    Float32MultiArray(data=outcome.vacuum_kpa.tolist()))
                assert rig.spin_until(lambda: node.pending is None or
                                      node.pending.get("watch") is not None, 5.0)
                while node.pending is not None:
                    received = rig.counter("received")
                    rig.send({"camera/color/image_raw": image(cell.render().rgb, "rgb8"),
                              "camera/color/camera_info": info(frame.intrinsics)})
                    rig.spin_until(lambda r=received: rig.counter("received") > r, 5.0)
                held = len(read_manifest(dataset))
                if len(cell.items) < 4:
                    seed += 1
                    cell.reset(seed)
    finally:
        rig.close()
    return held


def test_capture_adapt_and_swap_the_new_version_live(ros_context, tmp_path):
    dataset, store = tmp_path / "grasps", tmp_path / "store"
    assert _capture(ros_context, dataset) >= 6
    sample = read_manifest(dataset)[0]
    assert sample["success"]
    parent = resolve_model("latent_segmenter")  # the deployed model and its weights
    argv = ["--preset", "smoke", "--dataset", str(dataset), "--store", str(store),
            "--out", str(tmp_path / "run"), "--masks", "grasp",
            "--no-filter", "--held-out", "0.4", "--replay", "", "--eval-split", "",
            "--threads", "1"]
    report = adapt.main(argv)
    assert versions(store, "latent_segmenter") == ["latent_segmenter@v1",
                                                   "latent_segmenter@v2"]
    assert report["version"] == "latent_segmenter@v2" and report["grasps"] >= 6
    assert report["crops"] >= 1 and report["before"]["held_out_grasps"] >= 0
    card = (store / "latent_segmenter" / "v2" / "card.md").read_text()
    assert str(parent) in card and "perception adapt" in card and "grasp IoU" in card
    assert (store / "latent_segmenter" / "v2" / "checkpoint.pt").exists()
    assert adapt.main(argv) == report  # a finished run is not run again
    with pytest.raises(SystemExit, match="other arguments"):
        adapt.main([*argv[:-2], "--threads", "2"])
    v1_sha, v2_sha = (sha256_of(store / f"latent_segmenter/{v}/model.onnx")
                      for v in ("v1", "v2"))
    assert v1_sha == sha256_of(parent) and v2_sha != v1_sha
    # a corrupt third version: listed with its sha256, then a byte flipped on disk
    adapt_v3 = store / "latent_segmenter" / "v3"
    from perception_nodes.learning.model_store import add_version

    add_version(store, "latent_segmenter", store / "latent_segmenter/v2/model.onnx")
    data = bytearray((adapt_v3 / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (adapt_v3 / "model.onnx").write_bytes(bytes(data))
    _swap(ros_context, store, v1_sha, v2_sha)


def _swap(context, store, v1_sha: str, v2_sha: str) -> None:
    """The segmentation node on v1, set to v2 mid-stream, refused v3, rolled back to v1."""
    node = SegmentationNode(context=context, parameter_overrides=[
        Parameter("models_dir", value=str(store)), Parameter("mode", value="prior_mean"),
        Parameter("model", value="latent_segmenter@v1"), Parameter("threads", value=1),
        Parameter("publish_overlay", value=False), Parameter("diagnostics_period_s", value=0.2)])
    inputs = {"camera/color/image_raw": Image, "camera/depth/image_raw": Image,
              "camera/color/camera_info": CameraInfo}
    rig = HostileRig(context, node, inputs, qos=50)
    got, diags = [], []
    rig.probe.create_subscription(Image, "segmentation/instance_scores", got.append, 50)
    rig.probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 50)
    with PickingCell(split_config("novel_cell", 160, 120), seed=850_000) as cell:
        frame = cell.render()
    msgs = {"camera/color/image_raw": image(frame.rgb, "rgb8"),
            "camera/depth/image_raw": image(frame.depth, "32FC1"),
            "camera/color/camera_info": info(frame.intrinsics)}

    def frames(first: int, count: int) -> None:
        rig.stamp = first - 1
        for _ in range(count):
            rig.send(msgs)
            rig.executor.spin_once(timeout_sec=0.02)
        assert rig.spin_until(lambda: len(got) >= first + count - 1, 60.0)

    def diag_sha() -> str:
        for msg in reversed(diags):
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if "model_sha256" in values:
                    return values["model_sha256"]
        return ""

    try:
        frames(1, 2)
        rig.stamp = 2
        rig.send(msgs)  # frame 3 in flight while the model changes
        result = node.set_parameters([Parameter("model", value="latent_segmenter@v2")])[0]
        assert result.successful, result.reason
        rig.stamp = 3
        frames(4, 2)
        assert [m.header.stamp.sec for m in got] == [1, 2, 3, 4, 5]  # none dropped
        diags.clear()
        assert rig.spin_until(lambda: diag_sha() == v2_sha[:16], 10.0), diag_sha()
        refused = node.set_parameters([Parameter("model", value="latent_segmenter@v3")])[0]
        assert not refused.successful and "sha256" in refused.reason
        frames(6, 1)
        assert node.health.info["model_sha256"] == v2_sha[:16]  # v2 still serving
        assert node.set_parameters([Parameter("model", value="latent_segmenter@v1")])[0] \
            .successful
        frames(7, 1)
    finally:
        rig.close()
    first, v2, rolled_back = (image_to_numpy(got[i]) for i in (0, 4, 6))
    assert not np.array_equal(v2, first)  # the adapted weights answer differently
    np.testing.assert_array_equal(rolled_back, first)  # v1's outputs again, exactly
    assert json.dumps(node.health.info["model_sha256"]) == json.dumps(v1_sha[:16])


def test_the_store_command_adds_versions_and_lists_them(tmp_path, capsys):
    from perception_nodes.cli import main

    model = resolve_model("latent_segmenter")
    store = str(tmp_path / "store")
    for _ in range(2):
        assert main(["store", "add", "--store", store, "--model", str(model),
                     "--checkpoint", str(model.with_suffix(".pt"))]) == 0
    assert main(["store", "list", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["latent_segmenter@v1", "latent_segmenter@v2"]
    assert lines[2].startswith("latent_segmenter@v1  " + sha256_of(model)[:16])
    assert (tmp_path / "store" / "latent_segmenter" / "v2" / "checkpoint.pt").exists()
