"""Latent instance segmentation network (Latent-MaskRCNN, Sec. III-B and Appendix A), torch.

A small CNN with a feature-pyramid merge gives stride-4 features ``F`` once per image. The
latent ``z`` (64-d diagonal Gaussian) is tiled and concatenated with ``F`` and projected back
to ``F``'s width by a 1x1 convolution (Appendix A: "tile the latent codes across the spatial
dimensions ... then project the combined feature maps back down"); as the projection is
linear, ``W [F; z] = W_F F + W_z z``, so the image term is computed once and each of the k
samples only adds ``W_z z`` and runs the light head, all k in one batch. The head predicts
foreground, centre heatmap and centre offsets (see ``core/instance_encoding.py``).

Prior ``p(z|x)``: convolutions on ``F``, spatial mean pool, MLP (Appendix A, Fig. 6c).
Encoder ``q(z|x,y)``: per ground-truth instance, ``F`` mean-pooled over its mask plus its
area and position, embedded by an MLP; two fully connected graph layers (mean aggregation)
share information across instances, then a mean pool and a linear layer give mean and
log-variance (Fig. 6b; the paper pools RoI-aligned features, we pool over the mask).
``latent_dim = 0`` gives the single-hypothesis baseline of the same architecture.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

STRIDE = 4
CHANNELS = {"rgb": 3, "rgbh": 4}  # input channels of a model by what it reads


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Backbone(nn.Module):
    """Stride-4 features of width ``width`` from an image of ``in_channels`` (RGB, or RGB and
    height) (FPN-style top-down merge)."""

    def __init__(self, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(in_channels, 32, 2), _conv(32, 32))  # /2
        self.c2 = nn.Sequential(_conv(32, 64, 2), _conv(64, 64))           # /4
        self.c3 = nn.Sequential(_conv(64, 96, 2), _conv(96, 96))           # /8
        self.c4 = nn.Sequential(_conv(96, 128, 2), _conv(128, 128))        # /16
        self.lat2, self.lat3, self.lat4 = (nn.Conv2d(c, width, 1) for c in (64, 96, 128))
        self.out = _conv(width, width)

    def forward(self, x: Tensor) -> Tensor:
        c2 = self.c2(self.stem(x))
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p = self.lat4(c4)
        p = self.lat3(c3) + fn.interpolate(p, size=c3.shape[-2:], mode="nearest")
        p = self.lat2(c2) + fn.interpolate(p, size=c2.shape[-2:], mode="nearest")
        return self.out(p)


class GaussianHead(nn.Module):
    """A vector to the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, cin: int, latent_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cin, 128), nn.ReLU(inplace=True),
                                 nn.Linear(128, 2 * latent_dim))

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.mlp(v).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 6.0)


class Prior(nn.Module):
    def __init__(self, width: int, latent_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(width, width, 2), _conv(width, width))
        self.head = GaussianHead(width, latent_dim)

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.conv(feats).mean(dim=(2, 3)))


class Encoder(nn.Module):
    """q(z | x, y) from per-instance mask-pooled features and a small graph network."""

    def __init__(self, width: int, latent_dim: int, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(width + 3, 128), nn.ReLU(inplace=True))
        self.graph = nn.ModuleList(nn.Sequential(nn.Linear(256, 128), nn.ReLU(inplace=True))
                                   for _ in range(layers))
        self.head = GaussianHead(128, latent_dim)

    def forward(self, feats: Tensor, instance_ids: Tensor) -> tuple[Tensor, Tensor]:
        """``instance_ids (B, h, w) int64`` grid labels, 0 = background."""
        b, c, h, w = feats.shape
        mus, logvars = [], []
        ys = torch.linspace(0.0, 1.0, h, device=feats.device)[:, None].expand(h, w)
        xs = torch.linspace(0.0, 1.0, w, device=feats.device)[None, :].expand(h, w)
        for i in range(b):
            ids = instance_ids[i]
            labels = torch.unique(ids[ids > 0])
            if labels.numel() == 0:  # an empty tray: one node that sees the whole image
                masks = torch.ones(1, h, w, device=feats.device)
            else:
                masks = (ids[None] == labels[:, None, None]).float()
            area = masks.sum(dim=(1, 2)).clamp(min=1.0)
            pooled = torch.einsum("nhw,chw->nc", masks, feats[i]) / area[:, None]
            geom = torch.stack([area / (h * w), (masks * ys).sum((1, 2)) / area,
                                (masks * xs).sum((1, 2)) / area], dim=1)
            node = self.embed(torch.cat([pooled, geom], dim=1))
            for layer in self.graph:
                node = layer(torch.cat([node, node.mean(dim=0, keepdim=True).expand_as(node)],
                                       dim=1))
            mu, logvar = self.head(node.mean(dim=0))
            mus.append(mu)
            logvars.append(logvar)
        return torch.stack(mus), torch.stack(logvars)


class LatentSegmenter(nn.Module):
    """Backbone once per image; latent-conditioned head per sample. ``in_channels`` 3 reads
    colour, 4 colour and height above the floor (``core.instance_encoding.network_input``)."""

    def __init__(self, latent_dim: int = 64, width: int = 64, head_width: int = 32,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.latent_dim, self.width, self.in_channels = latent_dim, width, in_channels
        self.backbone = Backbone(width, in_channels)
        # the per-sample part is kept narrow: k samples must cost little more than one
        self.fuse_features = nn.Conv2d(width, head_width, 1)
        if latent_dim:
            self.fuse_latent = nn.Linear(latent_dim, head_width, bias=False)
            self.prior = Prior(width, latent_dim)
            self.encoder = Encoder(width, latent_dim)
        self.head = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(head_width, head_width, 3, padding=1, groups=head_width, bias=False),
            nn.Conv2d(head_width, head_width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(head_width, 4, 1))

    def decode(self, feats: Tensor, z: Tensor | None) -> Tensor:
        """Head outputs ``(B*, 4, h, w)``: fg, heatmap logits and 2 offsets.

        ``feats (B, C, h, w)`` with ``z (B, d)``, or ``feats (1, C, h, w)`` with ``z (K, d)``
        for K samples of one image (the image term is shared).
        """
        base = self.fuse_features(feats)
        if z is not None and self.latent_dim:
            base = base + self.fuse_latent(z)[:, :, None, None]
        return self.head(base)

    def forward(self, image: Tensor, instance_ids: Tensor | None = None
                ) -> dict[str, Tensor]:
        """Training forward: with ``instance_ids`` z comes from the encoder, else the prior
        mean. Returns the head output and, for latent models, both Gaussians."""
        feats = self.backbone(image)
        if not self.latent_dim:
            return {"out": self.decode(feats, None)}
        prior_mu, prior_logvar = self.prior(feats)
        if instance_ids is not None:
            mu, logvar = self.encoder(feats, instance_ids)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            mu, logvar, z = prior_mu, prior_logvar, prior_mu
        return {"out": self.decode(feats, z), "mu": mu, "logvar": logvar,
                "prior_mu": prior_mu, "prior_logvar": prior_logvar}


class SamplingExport(nn.Module):
    """What inference runs (and ONNX holds): one image, K latent draws ``eps (K, d)``.

    ``z = mu(x) + sigma(x) * eps``; eps = 0 decodes the prior mean. Outputs at grid
    resolution: ``out (K, 4, h, w)``.
    """

    def __init__(self, model: LatentSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, eps: Tensor) -> Tensor:
        feats = self.model.backbone(image)
        if not self.model.latent_dim:
            return self.model.decode(feats, None).expand(eps.shape[0], -1, -1, -1)
        mu, logvar = self.model.prior(feats)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.model.decode(feats, z)


def kl_divergence(mu: Tensor, logvar: Tensor, prior_mu: Tensor, prior_logvar: Tensor
                  ) -> Tensor:
    """KL(q || p) of diagonal Gaussians, summed over dimensions, mean over the batch."""
    var, prior_var = logvar.exp(), prior_logvar.exp()
    kl = 0.5 * (prior_logvar - logvar + (var + (mu - prior_mu) ** 2) / prior_var - 1.0)
    return kl.sum(dim=-1).mean()
