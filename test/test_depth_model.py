"""mono-depth + instances' depth network and losses without trained weights, and a seeded
smoke run."""

import json

import numpy as np
import pytest
import torch

from perception_nodes.inference.onnx_model import OnnxModel
from perception_nodes.learning.depth_losses import (
    TaskWeighting,
    depth_loss,
    edge_aware_smoothness,
    offset_loss,
    photometric_error,
    pose_matrix,
    warp,
)
from perception_nodes.learning.depth_model import (
    MAX_DEPTH_M,
    MIN_DEPTH_M,
    DepthNet,
    disparity_to_depth,
)
from perception_nodes.learning.depth_train import instance_offsets, main, scaled_intrinsics

K = torch.tensor([[[40.0, 0.0, 15.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]]])


def texture(seed: int = 0, h: int = 24, w: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    img = rng.random((1, 3, h // 4, w // 4)).astype(np.float32)
    return torch.nn.functional.interpolate(torch.from_numpy(img), size=(h, w), mode="bilinear",
                                           align_corners=False)


@pytest.mark.parametrize("pose", ["shared", "separate"])
def test_shapes_and_ranges_on_random_empty_and_nan_inputs(pose):
    torch.manual_seed(0)
    net = DepthNet(offsets=True, pose=pose).eval()
    with torch.no_grad():
        for x in (torch.randn(2, 3, 48, 64), torch.zeros(2, 3, 48, 64)):
            out = net(x)
            assert [d.shape[-2:] for d in out["disp"]] == [(6, 8), (12, 16), (24, 32), (48, 64)]
            depth = disparity_to_depth(out["disp"][-1])
            assert torch.all((depth >= MIN_DEPTH_M) & (depth <= MAX_DEPTH_M))
            assert out["offsets"].shape == (2, 2, 48, 64) and net.pose(x, x).shape == (2, 6)
        nan = torch.full((1, 3, 48, 64), float("nan"))
        assert not torch.isfinite(net(nan)["disp"][-1]).all()  # NaN in is not hidden
    with pytest.raises(ValueError):
        DepthNet(pose="both")


def test_pose_matrix_is_rigid_and_exact_for_a_quarter_turn():
    params = torch.tensor([[0.0, 0.0, np.pi / 2, 0.1, 0.2, 0.3], [0.0] * 6])
    pose = pose_matrix(params)
    assert torch.allclose(pose[0, :3, :3] @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]),
                          atol=1e-6)
    assert torch.allclose(pose[0, :3, 3], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(pose[1], torch.eye(4))
    rot = pose_matrix(torch.randn(4, 6))[:, :3, :3]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5)


def test_warp_identity_and_a_known_sideways_move():
    src = texture()
    depth = torch.ones(1, 1, 24, 32)
    assert torch.allclose(warp(src, depth, K, torch.eye(4)[None]), src, atol=1e-5)
    # the camera moves 0.1 m along x in front of a plane 1 m away: source pixels sit 4 px
    # to the left of the target's (fx 40 px)
    pose = torch.eye(4)[None].clone()
    pose[0, 0, 3] = -0.1
    warped = warp(src, depth, K, pose)
    assert torch.allclose(warped[..., 4:], src[..., :-4], atol=1e-5)


def test_photometric_error_and_smoothness():
    a, b = texture(0), texture(1)
    assert photometric_error(a, a).abs().max() < 1e-6
    assert photometric_error(a, b).mean() > 0.05
    disp = texture(2)[:, :1]
    assert edge_aware_smoothness(torch.ones_like(disp), a) == 0
    # mean-normalised: the scale of the disparity does not change the term
    assert torch.isclose(edge_aware_smoothness(disp, a), edge_aware_smoothness(5 * disp, a))


def test_depth_loss_is_lowest_at_the_true_depth():
    target = texture(3)
    true_depth = torch.full((1, 1, 24, 32), 0.8)
    moves = []
    for tx in (0.05, -0.05):
        pose = torch.eye(4)[None].clone()
        pose[0, 0, 3] = tx
        moves.append(pose)
    # sources rendered by warping the target the other way: each is what the moved camera sees
    sources = [warp(target, true_depth, K, torch.linalg.inv(pose)) for pose in moves]

    def loss_at(depth_m: float) -> float:
        lo, hi = 1 / MAX_DEPTH_M, 1 / MIN_DEPTH_M
        sig = torch.full((1, 1, 24, 32), (1 / depth_m - lo) / (hi - lo))
        disps = [torch.nn.functional.interpolate(sig, scale_factor=s) for s in (0.25, 0.5, 1)]
        return float(depth_loss(disps, disparity_to_depth, target, sources, moves, K)[0])

    assert loss_at(0.8) < 0.5 * min(loss_at(0.5), loss_at(1.3))


def test_offset_loss_counts_only_instance_pixels():
    target = torch.zeros(1, 2, 4, 4)
    pred = torch.zeros(1, 2, 4, 4)
    pred[..., 0, 0] = 10.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:, 2:] = 1
    assert offset_loss(pred, target, mask) == 0
    pred[..., 3, 3] = 1.0
    assert offset_loss(pred, target, mask) == pytest.approx(2.0 / 4)


def test_task_weightings():
    d, i = torch.tensor(0.4), torch.tensor(0.2)
    assert TaskWeighting("equal")(d, i) == pytest.approx(0.6)
    unc = TaskWeighting("uncertainty")
    total = unc(d, i)
    assert float(total.detach()) == pytest.approx(0.3)
    total.backward()
    assert unc.log_var.grad is not None and torch.all(unc.log_var.grad != 0)
    dwa = TaskWeighting("dwa", temperature=2.0, window=2)
    for depth_loss_value in (1.0, 1.0, 0.5, 0.5):  # depth halves, instance stays
        dwa(torch.tensor(depth_loss_value), torch.tensor(1.0))
    lam = dwa.weights()
    assert sum(lam) == pytest.approx(2.0) and lam[1] > lam[0]
    expected = 2 * np.exp(1.0 / 2) / (np.exp(0.5 / 2) + np.exp(1.0 / 2))
    assert lam[1] == pytest.approx(expected)
    with pytest.raises(ValueError):
        TaskWeighting("gradnorm")


def test_instance_offsets_and_intrinsics_scaling_by_hand():
    labels = np.zeros((3, 4), np.uint16)
    labels[:, :2] = 5  # centroid (row 1, col 0.5)
    off = instance_offsets(labels)
    assert off[:, 0, 0] == pytest.approx([1 / 4, 0.5 / 4])
    assert np.all(off[:, :, 2:] == 0)
    k = np.array([[200.0, 0, 159.5], [0, 200.0, 119.5], [0, 0, 1]])
    half = scaled_intrinsics(k, (240, 320), (120, 160))
    assert half[0, 0] == 100 and half[0, 2] == pytest.approx(79.5)
    assert half[1, 2] == pytest.approx(59.5)


def test_smoke_training_is_seeded_and_exports_a_checked_onnx(tmp_path):
    args = ["--preset", "smoke", "--data", str(tmp_path / "data"), "--threads", "1"]
    a = main(args + ["--out", str(tmp_path / "a"), "--offsets", "--weighting", "dwa"])
    b = main(args + ["--out", str(tmp_path / "b"), "--offsets", "--weighting", "dwa"])
    assert a["log"][-1]["total"] == pytest.approx(b["log"][-1]["total"], rel=1e-5)
    assert a["onnx_max_abs_diff"] < 1e-3
    c = main(args + ["--out", str(tmp_path / "c"), "--pose", "shared"])
    assert "offsets" not in c["log"][-1] and np.isfinite(c["log"][-1]["total"])
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    assert ckpt["input_size"] == (48, 64) and ckpt["args"]["weighting"] == "dwa"
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["args"]["weighting"] \
        == "none"
    out = OnnxModel(tmp_path / "a" / "model.onnx", providers="cpu").run(
        {"image": np.zeros((1, 3, 48, 64), np.float32)})["out"]
    assert out.shape == (1, 1, 48, 64) and np.all(out >= MIN_DEPTH_M)


def test_triplets_put_the_middle_frame_in_the_target_and_the_true_geometry_explains_it(
        tmp_path):
    from perception_nodes.learning.depth_train import SweepTriplets
    from perception_nodes.sim.dataset import load_scene
    from perception_nodes.sim.sequences import generate_sequences

    paths = generate_sequences(tmp_path, "depth_train", 1, width=64, height=48)
    data = SweepTriplets(paths, (48, 64), augment=False)
    assert len(data) == 3  # frames 1, 2, 3 of 5 have a neighbour on each side
    seq = load_scene(paths[0])
    sample, (_, t) = data[1], data.items[1]
    frames = seq["rgb"].astype(np.float32).transpose(0, 3, 1, 2) / 255
    assert np.allclose(sample["target"].numpy(), frames[t])
    assert np.allclose(sample["sources"][0].numpy(), frames[t - 1])
    depth = torch.from_numpy(np.nan_to_num(seq["depth"][t], nan=0.9))[None, None].float()
    for source, d in zip(sample["sources"], (-1, 1), strict=True):
        pose = torch.from_numpy(np.linalg.inv(seq["poses"][t + d]) @ seq["poses"][t]).float()
        true = photometric_error(warp(source[None], depth, sample["k_mat"][None], pose[None]),
                                 sample["target"][None])
        still = photometric_error(source[None], sample["target"][None])
        assert true.median() < 0.7 * still.median()


def test_known_poses_explain_the_target_also_when_the_triplet_is_mirrored(tmp_path):
    from perception_nodes.learning.depth_train import SweepTriplets
    from perception_nodes.sim.dataset import load_scene
    from perception_nodes.sim.sequences import generate_sequences

    paths = generate_sequences(tmp_path, "depth_train", 1, width=64, height=48)
    data = SweepTriplets(paths, (48, 64), augment=True)
    seq = load_scene(paths[0])
    t = data.items[1][1]
    depth = np.nan_to_num(seq["depth"][t], nan=0.9)
    flipped = 0
    for epoch in range(6):
        data.epoch = epoch
        s = data[1]
        frame = seq["rgb"][t].astype(np.float32).transpose(2, 0, 1)
        target = s["target"].numpy()
        mirrored = np.corrcoef(target.ravel(), frame[..., ::-1].ravel())[0, 1] > \
            np.corrcoef(target.ravel(), frame.ravel())[0, 1]
        d = torch.from_numpy(depth[:, ::-1].copy() if mirrored else depth)[None, None].float()
        flipped += mirrored
        for source, pose in zip(s["sources"], s["known_poses"], strict=True):
            true = photometric_error(warp(source[None], d, s["k_mat"][None], pose[None]),
                                     s["target"][None])
            still = photometric_error(source[None], s["target"][None])
            assert true.median() < 0.7 * still.median(), (epoch, mirrored)
    assert 0 < flipped < 6
    with pytest.raises(ValueError):
        DepthNet(pose="known").pose(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
