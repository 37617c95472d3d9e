"""Fast instance segmentation on a low-resolution grid (superpixel one-shot, Sec. III-A), torch.

The encoder (the same stride-4 ``Backbone`` as the latent model) runs once; three light
decoders predict, per grid element, a semantic softmax (background, item), the confidence
of being an object centre, and a 32-d embedding. superpixel one-shot gives each decoder two 3x3
convolutions at its own skip resolution; on two CPU cores at 30 frames/s we keep one
depthwise-separable 3x3 block per decoder on the shared stride-4 features.

Losses (Sec. III-A): class-weighted cross entropy with ``w_c = 1 / log(f_c + 1.02)``
(Eq. 1-2); hinged attraction to the centre embedding (delta_a 0.1), repulsion between
centres (delta_r 1.0) and a norm penalty on centres (gamma 0.001) (Eq. 3-4); a focal loss
on centres (alpha 0.01, gamma 2, Eq. 5) with the last bias initialised from pi = 0.1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from perception_nodes.learning.model import Backbone

EMBED_DIM = 32
DELTA_A, DELTA_R, GAMMA_REG = 0.1, 1.0, 0.001
FOCAL_ALPHA, FOCAL_GAMMA, CENTRE_PRIOR = 0.01, 2.0, 0.1
CLASS_EPSILON = 1.02


def _decoder(width: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width),
        nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Conv2d(width, cout, 1))


class SuperpixelSegmenter(nn.Module):
    """Encoder once, three decoders: ``semantic (B, 2, h, w)`` logits, ``centre (B, 1, h, w)``
    logits and ``embedding (B, 32, h, w)`` on the stride-4 grid, from ``in_channels`` 3
    (colour) or 4 (colour and height above the floor)."""

    def __init__(self, width: int = 64, embed_dim: int = EMBED_DIM, in_channels: int = 3
                 ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.backbone = Backbone(width, in_channels)
        self.semantic = _decoder(width, 2)
        self.centre = _decoder(width, 1)
        self.embedding = _decoder(width, embed_dim)
        # Sec. III-A.4: b = -log((1 - pi) / pi), so centres start rare, as they are.
        nn.init.constant_(self.centre[-1].bias, -math.log((1 - CENTRE_PRIOR) / CENTRE_PRIOR))

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        feats = self.backbone(image)
        return {"semantic": self.semantic(feats), "centre": self.centre(feats),
                "embedding": self.embedding(feats)}


class GridExport(nn.Module):
    """What inference runs: ``out (1, 2 + D, h, w)`` = [P(item), P(centre), embedding]."""

    def __init__(self, model: SuperpixelSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        out = self.model(image)
        fg = torch.softmax(out["semantic"], dim=1)[:, 1:2]
        return torch.cat([fg, torch.sigmoid(out["centre"]), out["embedding"]], dim=1)


def semantic_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Eq. 1-2: cross entropy weighted by ``1 / log(f_c + epsilon)`` of the batch's class
    frequencies. ``logits (B, C, h, w)``, ``target (B, h, w) int64``."""
    classes = logits.shape[1]
    freq = torch.bincount(target.reshape(-1), minlength=classes).float() / target.numel()
    weight = 1.0 / torch.log(freq + CLASS_EPSILON)
    return nn.functional.cross_entropy(logits, target, weight=weight)


def centre_focal_loss(logits: Tensor, target: Tensor, alpha: float = FOCAL_ALPHA,
                      gamma: float = FOCAL_GAMMA) -> Tensor:
    """Eq. 5, summed over the grid and divided by the number of centres (at least 1)."""
    p = torch.sigmoid(logits)
    log_p = nn.functional.logsigmoid(logits)
    log_not_p = nn.functional.logsigmoid(-logits)
    pos = -alpha * (1 - p) ** gamma * log_p * target
    neg = -(1 - alpha) * p ** gamma * log_not_p * (1 - target)
    return (pos + neg).sum() / target.sum().clamp(min=1.0)


def embedding_loss(embedding: Tensor, instance_ids: Tensor, centres: Tensor
                   ) -> dict[str, Tensor]:
    """Eq. 3-4 and the centre norm penalty, averaged over the batch's images.

    Args:
        embedding: ``(B, D, h, w)``.
        instance_ids: ``(B, h, w) int64`` grid labels, 0 = background.
        centres: ``(B, h, w)`` 1 at each instance's centre cell (one per instance).
    """
    attract, repel, reg = [], [], []
    for b in range(embedding.shape[0]):
        ids, emb = instance_ids[b], embedding[b]
        cy, cx = torch.nonzero(centres[b] > 0.5, as_tuple=True)
        if cy.numel() == 0:
            continue
        centre_ids = ids[cy, cx]
        centre_emb = emb[:, cy, cx].T                                   # (K, D)
        pixels = ids > 0
        pix_emb = emb[:, pixels].T                                      # (P, D)
        pix_ids = ids[pixels]
        # index of each pixel's instance among the centres
        lookup = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long, device=ids.device)
        lookup[centre_ids] = torch.arange(len(centre_ids), device=ids.device)
        k_of_pixel = lookup[pix_ids]
        keep = k_of_pixel >= 0
        dist = (pix_emb[keep] - centre_emb[k_of_pixel[keep]]).norm(dim=1)
        hinge = (dist - DELTA_A).clamp(min=0)
        per_instance = torch.zeros(len(centre_ids), device=emb.device).index_add(
            0, k_of_pixel[keep], hinge)
        counts = torch.bincount(k_of_pixel[keep], minlength=len(centre_ids)).clamp(min=1)
        attract.append((per_instance / counts).mean())
        if len(centre_ids) > 1:
            pair = torch.cdist(centre_emb, centre_emb)
            off = ~torch.eye(len(centre_ids), dtype=torch.bool, device=emb.device)
            repel.append((DELTA_R - pair[off]).clamp(min=0).mean())
        reg.append(centre_emb.norm(dim=1).mean())
    zero = embedding.sum() * 0.0

    def mean(values: list[Tensor]) -> Tensor:
        return torch.stack(values).mean() if values else zero

    return {"attract": mean(attract), "repel": mean(repel), "reg": mean(reg)}
