"""Grasp segmentation model (grasp self-supervision Sec. III-A), small enough to train on
2 CPU cores.

The paper uses a COCO-pretrained ResNet-50 FPN; no weights can be downloaded here, so the
encoder is a small strided CNN trained from scratch with an FPN-style top-down path to the
stride-4 features. As in the paper, two blocks of gated residual convolutions (y = x +
sigmoid(C2(x)) C1(x)), each followed by a transposed convolution, bring them to the input
resolution, and a 2-channel head predicts the visible and amodal masks (logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as fn
from torch import nn

from perception_nodes.core.grasp_segmentation import GRASP_INPUT_CHANNELS

# Sec. III-A's max-pool kernels 11, 51, 101, 201 at 640x960, scaled to our 240x320 (x 0.35)
BOUNDARY_KERNELS = (5, 17, 35, 71)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class GatedResidual(nn.Module):
    """y = x + sigmoid(C2(x)) * C1(x): the gate lets the block drop features (a reflection,
    a neighbour that moved) instead of adding them."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1 = nn.Sequential(_conv(ch, ch), nn.Conv2d(ch, ch, 3, 1, 1))
        self.c2 = nn.Sequential(_conv(ch, ch), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sigmoid(self.c2(x)) * self.c1(x)


class GraspSegmenter(nn.Module):
    """``(B, 10, H, W)`` (see ``core.grasp_segmentation.grasp_input``; H, W multiples of 16)
    to ``(B, 2, H, W)`` logits of the visible and amodal masks."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv(GRASP_INPUT_CHANNELS, w, 2), _conv(w, w))  # /2
        self.s4 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # /4
        self.s8 = nn.Sequential(_conv(2 * w, 3 * w, 2), _conv(3 * w, 3 * w))  # /8
        self.s16 = nn.Sequential(_conv(3 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # /16
        self.lat4, self.lat8, self.lat16 = (nn.Conv2d(c, 2 * w, 1) for c in (2 * w, 3 * w,
                                                                               4 * w))
        self.up1 = nn.Sequential(GatedResidual(2 * w), nn.ConvTranspose2d(2 * w, w, 2, 2))
        self.up2 = nn.Sequential(GatedResidual(w), nn.ConvTranspose2d(w, w, 2, 2))
        self.head = nn.Conv2d(w, 2, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        p = self.lat16(f16)
        p = self.lat8(f8) + fn.interpolate(p, size=f8.shape[-2:], mode="nearest")
        p = self.lat4(f4) + fn.interpolate(p, size=f4.shape[-2:], mode="nearest")
        return self.head(self.up2(self.up1(p)))


def weighted_bce_sum(logits: torch.Tensor, target: torch.Tensor,
                     kernels: tuple[int, ...] = BOUNDARY_KERNELS) -> dict[str, torch.Tensor]:
    """Eq. 2: the sum of Eq. 1 over six weightings of each pixel's BCE: the mask (w1), its
    complement (w2, together balanced), and the mask max-pooled with each kernel (w3..w6,
    the band around the boundary). ``logits`` and ``target`` are ``(B, C, H, W)``."""
    bce = fn.binary_cross_entropy_with_logits(logits, target, reduction="none")
    parts = {"w_mask": (bce * target).mean(), "w_background": (bce * (1 - target)).mean()}
    for k in kernels:
        grown = fn.max_pool2d(target, k, stride=1, padding=k // 2)
        parts[f"w_pool{k}"] = (bce * grown).mean()
    parts["total"] = sum(parts.values())
    return parts
