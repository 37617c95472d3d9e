"""mono-depth + instances' losses: view synthesis for depth (Sec. III-A), offsets (III-B),
weighting (III-C).

Images here are ``(B, 3, H, W)`` in [0, 1] (the photometric loss compares colours, not the
network's normalised input); depth ``(B, 1, H, W)``; intrinsics ``k_mat (B, 3, 3)`` pixels at the
image's size; poses ``(B, 4, 4)`` ``T_target->source`` mapping target-camera points into the
source camera (optical frames, ``core.conventions``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

SSIM_ALPHA = 0.85          # Eq. 2
SMOOTHNESS_WEIGHT = 1e-3   # lambda of Eq. 5
DWA_TEMPERATURE = 2.0      # T of Eq. 9
WEIGHTINGS = ("equal", "dwa", "uncertainty")


def pose_matrix(params: Tensor) -> Tensor:
    """``(B, 6)`` axis-angle (rad) and translation -> ``(B, 4, 4)`` rigid transforms."""
    rotvec, translation = params[:, :3], params[:, 3:]
    angle = rotvec.norm(dim=1, keepdim=True).clamp(min=1e-8)
    axis = rotvec / angle
    x, y, z = axis.unbind(1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(-1, 3, 3)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=params.dtype, device=params.device).expand_as(skew)
    rot = eye + s * skew + (1 - c) * skew @ skew        # Rodrigues
    out = torch.zeros(params.shape[0], 4, 4, dtype=params.dtype, device=params.device)
    out[:, :3, :3], out[:, :3, 3], out[:, 3, 3] = rot, translation, 1.0
    return out


def warp(source: Tensor, depth: Tensor, k_mat: Tensor, pose: Tensor) -> Tensor:
    """The source image resampled into the target view (Eq. 3): each target pixel is lifted
    with its depth, moved by ``pose`` and projected with ``k_mat``; bilinear, border padding."""
    b, _, h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=depth.dtype, device=depth.device),
                          torch.arange(w, dtype=depth.dtype, device=depth.device), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)]).view(1, 3, -1)
    points = (torch.linalg.inv(k_mat) @ pix) * depth.view(b, 1, -1)
    cam = pose[:, :3, :3] @ points + pose[:, :3, 3:]
    proj = k_mat @ cam
    z = proj[:, 2:].clamp(min=1e-6)
    grid = torch.stack([proj[:, 0] / z[:, 0] / (w - 1), proj[:, 1] / z[:, 0] / (h - 1)], -1)
    grid = (grid * 2 - 1).view(b, h, w, 2)
    return fn.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                          align_corners=True)


def ssim_distance(x: Tensor, y: Tensor) -> Tensor:
    """``(1 - SSIM) / 2`` per pixel over 3x3 windows (reflection padded), in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    x, y = fn.pad(x, (1, 1, 1, 1), mode="reflect"), fn.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = fn.avg_pool2d(x, 3, 1), fn.avg_pool2d(y, 3, 1)
    sigma_x = fn.avg_pool2d(x * x, 3, 1) - mu_x**2
    sigma_y = fn.avg_pool2d(y * y, 3, 1) - mu_y**2
    sigma_xy = fn.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / \
        ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(pred: Tensor, target: Tensor, alpha: float = SSIM_ALPHA) -> Tensor:
    """Eq. 2 per pixel ``(B, 1, H, W)``: alpha SSIM distance + (1 - alpha) L1."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return alpha * ssim_distance(pred, target).mean(1, keepdim=True) + (1 - alpha) * l1


def edge_aware_smoothness(disp: Tensor, image: Tensor) -> Tensor:
    """Eq. 4 on the mean-normalised disparity ``d / mean(d)`` (scalar)."""
    d = disp / disp.mean(dim=(2, 3), keepdim=True).clamp(min=1e-7)
    dx, dy = (d[..., :, 1:] - d[..., :, :-1]).abs(), (d[..., 1:, :] - d[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def depth_loss(disps: list[Tensor], to_depth, target: Tensor, sources: list[Tensor],
               poses: list[Tensor], k_mat: Tensor, alpha: float = SSIM_ALPHA,
               smoothness: float = SMOOTHNESS_WEIGHT, automask: bool = True
               ) -> tuple[Tensor, Tensor]:
    """Eq. 5: over the decoder's scales (each disparity upsampled to the input size, as
    Monodepth2's full-resolution multi-scale), the per-pixel minimum over sources of the
    reprojection error (Eq. 1), masked where an unwarped source already matches better
    (auto-masking: a static camera or a textureless patch), plus ``smoothness`` / 2^scale
    times Eq. 4 on the scale's own disparity. Returns the loss and the last auto-mask."""
    h, w = target.shape[-2:]
    identity = torch.cat([photometric_error(s, target, alpha) for s in sources], 1)
    # Monodepth2 breaks ties towards the reprojection with tiny noise; a fixed offset does
    # the same deterministically
    identity = identity + 1e-5
    total, mask = target.new_zeros(()), None
    for i, disp in enumerate(disps):
        scale = len(disps) - 1 - i                      # 0 = full resolution
        full = fn.interpolate(disp, size=(h, w), mode="bilinear", align_corners=False)
        depth = to_depth(full)
        reproj = torch.cat([photometric_error(warp(s, depth, k_mat, pose), target, alpha)
                            for s, pose in zip(sources, poses, strict=True)], 1)
        best_reproj = reproj.min(1, keepdim=True).values
        if automask:
            best_identity = identity.min(1, keepdim=True).values
            mask = (best_reproj < best_identity).float()
            # Monodepth2's form: the per-pixel minimum over identity and reprojection, a mean
            # over every pixel. Masked pixels give no gradient but keep their weight:
            # normalising by the mask instead rewards shrinking it to the easiest pixels (a
            # degenerate depth that explains little scored better than the true one)
            photo = torch.minimum(best_reproj, best_identity).mean()
        else:
            photo = best_reproj.mean()
        small = fn.interpolate(target, size=disp.shape[-2:], mode="area")
        total = total + photo + smoothness / 2**scale * edge_aware_smoothness(disp, small)
    return total / len(disps), mask


def offset_loss(pred: Tensor, target: Tensor, on_instance: Tensor) -> Tensor:
    """Eq. 7: L1 between offsets ``(B, 2, H, W)``, only on instance pixels ``(B, 1, H, W)``."""
    per_pixel = (pred - target).abs().sum(1, keepdim=True) * on_instance
    return per_pixel.sum() / on_instance.sum().clamp(min=1)


class TaskWeighting(nn.Module):
    """Combine the depth and instance losses (Sec. III-C).

    ``equal``: L_d + L_i. ``dwa`` (Eq. 9-11): weights from the ratio of each loss's mean over
    the last two windows of ``window`` steps (an epoch in the paper) at temperature T, 1 for
    the first two windows, total ``(l_d L_d + l_i L_i) / 2``. ``uncertainty`` (Eq. 8):
    learned ``s = log sigma^2`` per task, ``exp(-s) L / 2 + s / 2`` each.
    """

    def __init__(self, mode: str, temperature: float = DWA_TEMPERATURE, window: int = 50
                 ) -> None:
        super().__init__()
        if mode not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {mode!r}")
        self.mode, self.temperature, self.window = mode, temperature, window
        if mode == "uncertainty":
            self.log_var = nn.Parameter(torch.zeros(2))
        self._sums, self._count, self._history = [0.0, 0.0], 0, []

    def weights(self) -> list[float]:
        """The DWA weights for the current window (``[1, 1]`` until two windows passed)."""
        if len(self._history) < 2:
            return [1.0, 1.0]
        ratios = torch.tensor([a / max(b, 1e-12) for a, b in zip(self._history[-1],
                                                                 self._history[-2],
                                                                 strict=True)])
        return (2 * torch.softmax(ratios / self.temperature, 0)).tolist()

    def forward(self, depth: Tensor, instance: Tensor) -> Tensor:
        if self.mode == "equal":
            return depth + instance
        if self.mode == "uncertainty":
            s = self.log_var
            return 0.5 * (torch.exp(-s[0]) * depth + s[0] + torch.exp(-s[1]) * instance + s[1])
        lam = self.weights()
        self._sums = [self._sums[0] + float(depth.detach()), self._sums[1] +
                      float(instance.detach())]
        self._count += 1
        if self._count == self.window:
            self._history.append([v / self.window for v in self._sums])
            self._sums, self._count = [0.0, 0.0], 0
        return 0.5 * (lam[0] * depth + lam[1] * instance)
