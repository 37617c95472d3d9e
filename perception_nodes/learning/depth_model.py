"""The monocular depth network of mono-depth + instances (Sec. III, Fig. 1), small enough
for a CPU.

A shared encoder-decoder (stride 8 with dilated context at the bottom, skip connections on
the way up) computes features once; each task reads them through its own soft-attention
modules, one per decoder stage (MTAN, the paper's [15]): ``a = sigmoid(conv(relu(conv(f))))``
and the task sees ``a * f``. The depth task predicts a disparity at each of the four decoder
scales (Monodepth2's multi-scale output, Sec. III-A); the instance task predicts, at full
resolution, each pixel's offset to its instance's centroid (Sec. III-B, Eq. 6) in units of
the image width. Pose comes either from the shared encoder (a head on the bottleneck features
of the target and source frames: the paper's lighter design) or from a separate pose network
on the stacked pair (Monodepth2's); ``pose="shared"`` or ``"separate"``.

Depth is ``1 / (1/MAX + (1/MIN - 1/MAX) * sigmoid)``, metres up to the unknown scale of
monocular training: ``disparity_to_depth`` is the one conversion training and export use.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

MIN_DEPTH_M, MAX_DEPTH_M = 0.1, 10.0
SCALES = 4  # decoder outputs at 1/8, 1/4, 1/2 and 1/1 of the input
# "known": no pose network; the camera motion comes from the arm's kinematics (a wrist
# camera's pose is known in a robot cell), which also makes the learned depth metric
POSE_MODES = ("shared", "separate", "known")


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        # reflection (Monodepth2's) avoids dark borders; dilated context convs pad with zeros
        # as small maps cannot be reflected by more than their size
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False,
                  padding_mode="reflect" if dilation == 1 else "zeros"),
        nn.BatchNorm2d(cout), nn.ELU(inplace=True))


def disparity_to_depth(sigmoid: Tensor) -> Tensor:
    """Network output in (0, 1) to depth in [MIN_DEPTH_M, MAX_DEPTH_M] (up to scale)."""
    lo, hi = 1.0 / MAX_DEPTH_M, 1.0 / MIN_DEPTH_M
    return 1.0 / (lo + (hi - lo) * sigmoid)


class Encoder(nn.Module):
    """``(B, 3, H, W)`` -> features at 1/2, 1/4, 1/8 (the last with dilated context)."""

    channels = (16, 32, 64, 96)

    def __init__(self) -> None:
        super().__init__()
        c = self.channels
        self.s1 = nn.Sequential(_conv(3, c[0], 2), _conv(c[0], c[0]))
        self.s2 = nn.Sequential(_conv(c[0], c[1], 2), _conv(c[1], c[1]))
        self.s3 = nn.Sequential(_conv(c[1], c[2], 2), _conv(c[2], c[2]))
        self.context = nn.Sequential(_conv(c[2], c[3], dilation=2), _conv(c[3], c[3], dilation=4),
                                     _conv(c[3], c[3], dilation=8))

    def forward(self, x: Tensor) -> list[Tensor]:
        f1 = self.s1(x)
        f2 = self.s2(f1)
        f3 = self.context(self.s3(f2))
        return [f1, f2, f3]


class Decoder(nn.Module):
    """Shared upsampling path: features at 1/8, 1/4, 1/2, 1/1 (``SCALES`` stages)."""

    channels = (64, 48, 32, 16)

    def __init__(self) -> None:
        super().__init__()
        enc, dec = Encoder.channels, self.channels
        self.bottom = _conv(enc[3], dec[0])
        self.up = nn.ModuleList([_conv(dec[0] + enc[1], dec[1]), _conv(dec[1] + enc[0], dec[2]),
                                 _conv(dec[2] + 3, dec[3])])

    def forward(self, image: Tensor, feats: list[Tensor]) -> list[Tensor]:
        skips = [feats[1], feats[0], image]
        out = [self.bottom(feats[2])]
        for block, skip in zip(self.up, skips, strict=True):
            x = fn.interpolate(out[-1], size=skip.shape[-2:], mode="nearest")
            out.append(block(torch.cat([x, skip], dim=1)))
        return out


class Attention(nn.Module):
    """One MTAN soft-attention module: a task's mask over a shared feature map, computed from
    that map and the task's own features of the previous (coarser) stage."""

    def __init__(self, channels: int, previous: int = 0) -> None:
        super().__init__()
        self.mask = nn.Sequential(nn.Conv2d(channels + previous, channels, 1),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                                  nn.Sigmoid())

    def forward(self, shared: Tensor, previous: Tensor | None = None) -> Tensor:
        x = shared
        if previous is not None:
            x = torch.cat([shared, fn.interpolate(previous, size=shared.shape[-2:])], dim=1)
        return self.mask(x) * shared


def _task_branch(channels: tuple[int, ...]) -> nn.ModuleList:
    return nn.ModuleList(Attention(c, p) for c, p in zip(channels, (0, *channels[:-1]),
                                                           strict=True))


def _task_features(branch: nn.ModuleList, shared: list[Tensor]) -> list[Tensor]:
    feats: list[Tensor] = []
    for att, f in zip(branch, shared, strict=True):
        feats.append(att(f, feats[-1] if feats else None))
    return feats


class PoseHead(nn.Module):
    """Six pose parameters (axis-angle, translation) from a feature or image pair."""

    def __init__(self, cin: int, width: int, stem: bool) -> None:
        super().__init__()
        layers = [_conv(cin, width, 2), _conv(width, width, 2), _conv(width, width, 2),
                  _conv(width, width, 2)] if stem else [_conv(cin, width), _conv(width, width)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, 6, 1)

    def forward(self, x: Tensor) -> Tensor:
        # Monodepth2's 0.01: the first steps start near the identity motion
        return 0.01 * self.out(self.body(x)).mean(dim=(2, 3))


class DepthNet(nn.Module):
    """``forward(image)`` -> ``{"disp": [SCALES x (B, 1, h_s, w_s)] in (0, 1), coarse first,
    "offsets": (B, 2, H, W) or absent}``; ``pose(target, source)`` -> ``(B, 6)``.

    ``offsets=True`` adds the instance-offset task; ``pose`` picks the pose network.
    """

    def __init__(self, offsets: bool = False, pose: str = "shared") -> None:
        super().__init__()
        if pose not in POSE_MODES:
            raise ValueError(f"pose must be one of {POSE_MODES}, got {pose!r}")
        self.encoder, self.decoder = Encoder(), Decoder()
        dec = Decoder.channels
        self.depth_attention = _task_branch(dec)
        self.disp_heads = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in dec)
        self.with_offsets = offsets
        if offsets:
            self.offset_attention = _task_branch(dec)
            self.offset_head = nn.Conv2d(dec[-1], 2, 3, padding=1)
        self.pose_mode = pose
        if pose == "shared":
            self.pose_attention = Attention(2 * Encoder.channels[3])
            self.pose_head = PoseHead(2 * Encoder.channels[3], 64, stem=False)
        elif pose == "separate":
            self.pose_head = PoseHead(6, 32, stem=True)

    def forward(self, image: Tensor) -> dict[str, Tensor | list[Tensor]]:
        shared = self.decoder(image, self.encoder(image))
        depth = _task_features(self.depth_attention, shared)
        out: dict[str, Tensor | list[Tensor]] = {
            "disp": [torch.sigmoid(head(f)) for head, f in zip(self.disp_heads, depth,
                                                                strict=True)]}
        if self.with_offsets:
            out["offsets"] = self.offset_head(_task_features(self.offset_attention, shared)[-1])
        return out

    def pose(self, target: Tensor, source: Tensor) -> Tensor:
        """Axis-angle and translation of ``T_target->source`` ``(B, 6)``."""
        if self.pose_mode == "known":
            raise ValueError("pose mode 'known' has no pose network: the poses are given")
        if self.pose_mode == "shared":
            pair = torch.cat([self.encoder(target)[-1], self.encoder(source)[-1]], dim=1)
            return self.pose_head(self.pose_attention(pair))
        return self.pose_head(torch.cat([target, source], dim=1))


class DepthExport(nn.Module):
    """What ONNX holds: ``image (1, 3, H, W)`` normalised -> ``out (1, 1, H, W)`` depth
    (metres up to the scale of training)."""

    def __init__(self, model: DepthNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return disparity_to_depth(self.model(image)["disp"][-1])
