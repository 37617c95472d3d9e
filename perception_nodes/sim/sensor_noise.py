"""Noise models of a structured-light RGB-D camera, applied to clean renders (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthNoiseModel:
    """Axial noise, quantisation and dropouts of a consumer RGB-D camera.

    The axial standard deviation follows Nguyen, Izadi and Lovell (3DIMPVT 2012) for a
    Kinect-class sensor: ``sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2`` metres. Pixels at depth
    discontinuities (where the projector is shadowed and flying pixels appear), on surfaces
    seen at grazing angles, outside the valid range, and a small random share, read invalid.
    """

    min_range_m: float = 0.2
    max_range_m: float = 2.0
    edge_jump_m: float = 0.01
    edge_dropout: float = 0.6
    random_dropout: float = 0.004
    quantum_m: float = 0.0005

    def apply(self, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of a clean ``(H, W) float32`` z-depth image (metres, NaN invalid)."""
        z = depth.astype(np.float32, copy=True)
        sigma = 0.0012 + 0.0019 * (np.nan_to_num(z, nan=0.4) - 0.4) ** 2
        z += rng.standard_normal(z.shape).astype(np.float32) * sigma.astype(np.float32)
        z = np.round(z / self.quantum_m) * np.float32(self.quantum_m)
        padded = np.pad(depth, 1, mode="edge")
        jump = np.zeros(depth.shape, dtype=bool)
        for dv, du in ((0, 1), (1, 0), (2, 1), (1, 2)):
            neighbour = padded[dv : dv + depth.shape[0], du : du + depth.shape[1]]
            jump |= np.abs(neighbour - depth) > self.edge_jump_m
        drop = jump & (rng.uniform(size=depth.shape) < self.edge_dropout)
        drop |= rng.uniform(size=depth.shape) < self.random_dropout
        drop |= ~np.isfinite(depth) | (depth < self.min_range_m) | (depth > self.max_range_m)
        z[drop] = np.nan
        return z


def add_rgb_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian read noise on an ``(H, W, 3) uint8`` image; sigma in digital numbers."""
    if sigma <= 0:
        return rgb.copy()
    noisy = rgb.astype(np.float32) + rng.standard_normal(rgb.shape, dtype=np.float32) * sigma
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
