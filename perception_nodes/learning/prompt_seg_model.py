"""A small class-agnostic point-prompted mask model, our stand-in for SAM (UGainS Sec. 3).

No SAM weights can be had here, so this is trained on the simulated cell's items and its
training foreign objects (never the held-out foreign set). As in SAM, the image is encoded
once and every prompt only runs a light decoder: the backbone gives stride-4 unit-length
embeddings ``E``; a prompt at pixel ``p`` takes the Gaussian-weighted mean embedding around
``p`` (``e_p``), and the decoder sees ``[E, E . e_p, G_p]`` (the similarity to the prompt and
the prompt's Gaussian) and returns the mask logit of the object under ``p`` on the stride-4
grid. A prompt on no object should give an empty mask.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from perception_nodes.learning.model import STRIDE, Backbone


class PromptSegmenter(nn.Module):
    """``image (B, C, H, W)``, ``points (B, P, 2)`` (row, col in input pixels) -> mask
    logits ``(B, P, H/4, W/4)``. ``C`` = 3 (RGB) or 4 (RGB and height above the tray floor,
    ``core.instance_encoding.preprocess_rgbh``): SAM has only colour, but a cell has a depth
    camera, and height holds a multi-coloured object (a ball's patches, a toy's parts)
    together where colour splits it."""

    def __init__(self, width: int = 32, embed: int = 16, hidden: int = 16,
                 sigma_cells: float = 1.5, in_channels: int = 3) -> None:
        super().__init__()
        self.backbone = Backbone(width, in_channels)
        self.embed = nn.Conv2d(width, embed, 1)
        self.sigma = sigma_cells
        self.decoder = nn.Sequential(
            nn.Conv2d(embed + 2, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=8, dilation=8), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1))

    def encode(self, image: Tensor) -> Tensor:
        """Unit-length embeddings ``(B, D, h, w)``."""
        return fn.normalize(self.embed(self.backbone(image)), dim=1)

    def decode(self, emb: Tensor, points: Tensor) -> Tensor:
        b, d, h, w = emb.shape
        p = points.shape[1]
        rows = (torch.arange(h, dtype=emb.dtype, device=emb.device) + 0.5) * STRIDE - 0.5
        cols = (torch.arange(w, dtype=emb.dtype, device=emb.device) + 0.5) * STRIDE - 0.5
        dr = (rows[None, None, :, None] - points[..., 0, None, None]) / STRIDE
        dc = (cols[None, None, None, :] - points[..., 1, None, None]) / STRIDE
        gauss = torch.exp(-(dr * dr + dc * dc) / (2 * self.sigma ** 2))      # (B, P, h, w)
        weights = gauss / gauss.sum(dim=(2, 3), keepdim=True).clamp(min=1e-6)
        e_p = torch.einsum("bphw,bdhw->bpd", weights, emb)                   # (B, P, D)
        sim = torch.einsum("bpd,bdhw->bphw", e_p, emb)
        x = torch.cat([emb[:, None].expand(b, p, d, h, w), sim[:, :, None], gauss[:, :, None]],
                      dim=2).reshape(b * p, d + 2, h, w)
        return self.decoder(x).reshape(b, p, h, w)

    def forward(self, image: Tensor, points: Tensor) -> Tensor:
        return self.decode(self.encode(image), points)


class PromptExport(nn.Module):
    """What ONNX holds: ``image (1, C, H, W)`` normalised, ``points (P, 2)`` -> ``out (P, 1,
    H/4, W/4)`` mask logits, P dynamic."""

    def __init__(self, model: PromptSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, points: Tensor) -> Tensor:
        return self.model(image, points[None])[0][:, None]


def prompt_mask_loss(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """BCE plus soft Dice over each prompt's grid (an empty target has Dice 0 by its
    convention: only its BCE counts), both means over prompts."""
    bce = fn.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(-2, -1))
    denom = (prob + target).sum(dim=(-2, -1))
    has = target.sum(dim=(-2, -1)) > 0
    dice = torch.where(has, 1 - 2 * inter / denom.clamp(min=1e-6), torch.zeros_like(inter))
    return {"bce": bce, "dice": dice.mean(), "total": bce + dice.mean()}
