"""Which frames bracket a grasp (no ROS): the last one before the arm enters the view and the
first stable one after it leaves (grasp self-supervision Sec. III: before/after images
of each grasp)."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class FrameRing:
    """The newest ``capacity`` frames ``(stamp_ns, frame)`` (an image array or a message);
    memory stays bounded."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.frames: deque[tuple[int, Any]] = deque(maxlen=capacity)

    def push(self, stamp_ns: int, frame: Any) -> None:
        self.frames.append((int(stamp_ns), frame))

    def newest(self) -> tuple[int, Any] | None:
        return self.frames[-1] if self.frames else None

    def at(self, stamp_ns: int) -> Any | None:
        """The frame of exactly this stamp, if it is still kept."""
        return next((f for s, f in reversed(self.frames) if s == stamp_ns), None)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference of two ``(H, W, 3) uint8`` images."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


class StableFrameWatch:
    """After the arm left: the first frame that differs from the one before it by less than
    ``max_difference`` grey levels (the scene settled), or the ``max_frames``-th frame."""

    def __init__(self, max_difference: float, max_frames: int) -> None:
        self.max_difference, self.max_frames = max_difference, max_frames
        self.previous: np.ndarray | None = None
        self.seen = 0

    def offer(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` is the after frame."""
        self.seen += 1
        stable = self.previous is not None and \
            mean_abs_difference(rgb, self.previous) < self.max_difference
        self.previous = rgb
        return stable or self.seen >= self.max_frames
