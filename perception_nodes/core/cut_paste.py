"""Cut-and-paste instance supervision from grasped objects (grasp self-supervision Sec. III-B.2/3).

Objects cut from grasps (the before frame under the grasp segmentation's visible mask) are
pasted onto a labelled training image: 0 to 25 of them, each rotated by 0-360 degrees,
scaled by 0.75-1.25 and placed at random, later ones over earlier ones. The paper smooths
the pasted boundaries with a Stable Diffusion inpainting model; none can be had here, so the
same region (the pasted objects' visible boundary dilated by 5 px) is inpainted with
OpenCV's Telea method. Images ``(H, W, 3) uint8`` RGB, labels ``(H, W) uint16`` (0 none),
heights ``(H, W) float32`` metres above the bin floor (NaN unknown) for models that read
geometry: a pasted object keeps its own height and rests on what lies under it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ObjectCrop:
    """An object cut from an image: ``rgb (h, w, 3) uint8``, ``mask (h, w) bool`` and, for
    models that read geometry, ``height (h, w) float32`` m above the floor it stood on."""

    rgb: np.ndarray
    mask: np.ndarray
    height: np.ndarray | None = None


def cut_object(image: np.ndarray, mask: np.ndarray, height: np.ndarray | None = None
               ) -> ObjectCrop:
    """The bounding box of ``mask`` in ``image`` (and ``height``; ValueError for an empty
    mask)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("cannot cut an empty mask")
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return ObjectCrop(image[box].copy(), np.asarray(mask, bool)[box].copy(),
                      None if height is None else np.asarray(height, np.float32)[box].copy())


def transform_crop(crop: ObjectCrop, angle_deg: float, scale: float) -> ObjectCrop:
    """``crop`` rotated by ``angle_deg`` and scaled, on a canvas that holds all of it
    (bilinear for colour, nearest for the mask)."""
    h, w = crop.mask.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, scale)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(h * sin + w * cos)) + 1, int(np.ceil(h * cos + w * sin)) + 1
    m[0, 2] += (nw - 1) / 2 - (w - 1) / 2
    m[1, 2] += (nh - 1) / 2 - (h - 1) / 2
    # replicate the border: the canvas around the crop must not bleed black into its edge
    rgb = cv2.warpAffine(crop.rgb, m, (nw, nh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(crop.mask.astype(np.uint8), m, (nw, nh),
                          flags=cv2.INTER_NEAREST) > 0
    height = None if crop.height is None else cv2.warpAffine(
        crop.height, m, (nw, nh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return ObjectCrop(rgb, mask, height)


def paste_objects(image: np.ndarray, labels: np.ndarray, crops: list[ObjectCrop],
                  rng: np.random.Generator, max_objects: int = 25,
                  scale_range: tuple[float, float] = (0.75, 1.25), inpaint_px: int = 5,
                  height: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A new ``(image, labels, height)`` with 0..``max_objects`` random crops pasted
    (Sec. III-B.2) and their boundaries inpainted (Sec. III-B.3, ``inpaint_px`` = 0 turns it
    off). With ``height`` (then every crop needs one) a pasted object's height is its own
    plus the median height of what it lands on, as if it rested there; None: None.

    Labels come out renumbered 1..N in order of first appearance; an instance that pasted
    objects hide completely disappears.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} differ")
    if height is not None and any(c.height is None for c in crops):
        raise ValueError("pasting onto a height image needs crops with heights")
    out, lab = image.copy(), labels.astype(np.int64).copy()
    out_h = None if height is None else np.array(height, np.float32)
    h, w = labels.shape
    pasted = np.zeros((h, w), bool)
    next_id = int(lab.max()) + 1
    count = int(rng.integers(0, max_objects + 1)) if crops else 0
    for _ in range(count):
        crop = transform_crop(crops[int(rng.integers(len(crops)))],
                              float(rng.uniform(0, 360)), float(rng.uniform(*scale_range)))
        ch, cw = crop.mask.shape
        if ch > h or cw > w:
            continue
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        region = (slice(top, top + ch), slice(left, left + cw))
        out[region][crop.mask] = crop.rgb[crop.mask]
        if out_h is not None:
            under = out_h[region][crop.mask]
            base = float(np.nanmedian(under)) if np.isfinite(under).any() else 0.0
            out_h[region][crop.mask] = crop.height[crop.mask] + max(0.0, base)
        lab[region][crop.mask] = next_id
        pasted[region] |= crop.mask
        next_id += 1
    if inpaint_px > 0 and pasted.any():
        # the visible boundary of every pasted object, dilated on all sides
        boundary = np.zeros((h, w), np.uint8)
        for value in np.unique(lab[pasted]):
            m = (lab == value).astype(np.uint8)
            boundary |= cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inpaint_px + 1,) * 2)
        band = cv2.dilate(boundary, kernel)
        out = cv2.inpaint(out, band, 3, cv2.INPAINT_TELEA)
    values, first = np.unique(lab.ravel(), return_index=True)
    order = values[np.argsort(first)]
    order = order[order > 0]
    lut = np.zeros(int(lab.max()) + 1, np.uint16)
    lut[order] = np.arange(1, len(order) + 1)
    return out, lut[lab], out_h


def pack_crops(crops: list[ObjectCrop]) -> dict[str, np.ndarray]:
    """A crop bank as arrays for one ``.npz`` (write it with ``save_npz_atomic``): colours
    and masks flattened, with their shapes."""
    shapes = np.array([c.mask.shape for c in crops], np.int64).reshape(-1, 2)
    rgb = np.concatenate([c.rgb.reshape(-1) for c in crops]) if crops else np.zeros(0, np.uint8)
    mask = np.concatenate([c.mask.reshape(-1) for c in crops]) if crops else np.zeros(0, bool)
    packed = {"shapes": shapes, "rgb": rgb, "mask": mask}
    if crops and all(c.height is not None for c in crops):
        packed["height"] = np.concatenate([c.height.reshape(-1) for c in crops])
    return packed


def load_crops(path: str) -> list[ObjectCrop]:
    """The crops of a ``.npz`` written from :func:`pack_crops`, in order."""
    with np.load(path) as z:
        shapes, rgb, mask = z["shapes"], z["rgb"], z["mask"]
        height = z["height"] if "height" in z.files else None
    crops, at = [], 0
    for h, w in shapes:
        n = int(h * w)
        crops.append(ObjectCrop(rgb[3 * at:3 * (at + n)].reshape(h, w, 3),
                                mask[at:at + n].reshape(h, w),
                                None if height is None else height[at:at + n].reshape(h, w)))
        at += n
    return crops
