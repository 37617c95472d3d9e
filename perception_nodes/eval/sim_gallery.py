"""`perception sim-gallery`: a contact sheet of randomized scenes across the splits.

    perception sim-gallery --out docs/sim_gallery.png

Each tile is a scene's colour frame with its split, seed and main factors written under it
(floor material, layout, camera height, depth sensor), beside its depth frame (NaN black).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perception_nodes.sim.cell import PickingCell
from perception_nodes.sim.dataset import SPLIT_SEEDS, split_config

# (split, offset into its seed range): the first scenes of each split
DEFAULT_SCENES = [("train", k) for k in range(4)] + [("test", k) for k in range(3)] + \
                 [("novel", k) for k in range(5)]


def depth_colour(depth: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` of a depth image: near bright, far dark, invalid (NaN) black."""
    valid = np.isfinite(depth)
    out = np.zeros((*depth.shape, 3), np.uint8)
    if valid.any():
        lo, hi = np.percentile(depth[valid], [1, 99])
        grey = np.clip((hi - depth) / max(hi - lo, 1e-6), 0.0, 1.0) * 215 + 40
        out[valid] = cv2.applyColorMap(grey.astype(np.uint8), cv2.COLORMAP_VIRIDIS)[valid]
    return out


def tile(split: str, seed: int, width: int, height: int) -> np.ndarray:
    """One scene: colour and depth side by side, a caption band under them (RGB)."""
    with PickingCell(split_config(split, width, height), seed) as cell:
        frame = cell.render()
        style = cell.style
    caption = [f"{split} {seed}"]
    if style is not None:
        caption.append(f"{style.floor_family} floor, {style.layout} x{len(cell.items)}, "
                       f"cam {style.camera_height_m:.2f} m, {style.depth_sensor}")
    pair = np.hstack([frame.rgb, depth_colour(frame.depth)[..., ::-1]])
    band = np.full((34, pair.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(caption):
        cv2.putText(band, text, (4, 13 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return np.vstack([pair, band])


def make_gallery(out: Path | str, scenes: list[tuple[str, int]] | None = None,
                 columns: int = 3, width: int = 320, height: int = 240) -> Path:
    """Render ``scenes`` (split, offset) and write them as one PNG grid to ``out``."""
    tiles = [tile(split, SPLIT_SEEDS[split][0] + k, width, height)
             for split, k in (scenes or DEFAULT_SCENES)]
    rows = [np.hstack(tiles[i:i + columns] + [np.full_like(tiles[0], 255)] *
                      (columns - len(tiles[i:i + columns])))
            for i in range(0, len(tiles), columns)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    tmp.replace(out)
    return out
