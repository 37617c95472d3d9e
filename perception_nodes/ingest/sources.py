"""Frame sources that read colour images from hardware or disk (OpenCV, no ROS).

Each source yields ``(H, W, 3) uint8`` RGB frames; ``read`` returns None when a file source
is exhausted (and ``loop`` is off) and raises :class:`SourceError` when a device fails.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class SourceError(RuntimeError):
    """A camera or file that cannot be opened or read."""


class OpenCvSource:
    """A V4L2/USB camera (``device`` an index or /dev path) or a video file, via OpenCV."""

    def __init__(self, device: str, width: int = 0, height: int = 0, loop: bool = False) -> None:
        self.is_file = not device.isdigit() and not device.startswith("/dev/")
        if self.is_file and not Path(device).is_file():
            raise SourceError(f"video file {device!r} does not exist")
        target = int(device) if device.isdigit() else device
        backend = cv2.CAP_ANY if self.is_file else cv2.CAP_V4L2
        self.capture = cv2.VideoCapture(target, backend)
        if not self.capture.isOpened():
            raise SourceError(f"cannot open {device!r}")
        if width and height and not self.is_file:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.loop = loop
        self.device = device

    def read(self) -> np.ndarray | None:
        ok, bgr = self.capture.read()
        if not ok and self.is_file and self.loop:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.capture.read()
        if not ok:
            if self.is_file:
                return None
            raise SourceError(f"camera {self.device!r} stopped delivering frames")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()


class FolderSource:
    """Images of a folder in name order; unreadable files are skipped and counted."""

    def __init__(self, folder: str, loop: bool = False) -> None:
        path = Path(folder)
        if not path.is_dir():
            raise SourceError(f"image folder {folder!r} does not exist")
        self.files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder!r}")
        self.loop = loop
        self.index = 0
        self.unreadable = 0

    def read(self) -> np.ndarray | None:
        for _ in range(len(self.files)):
            if self.index >= len(self.files):
                if not self.loop:
                    return None
                self.index = 0
            path = self.files[self.index]
            self.index += 1
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self.unreadable += 1
        return None

    def close(self) -> None:
        pass


def open_source(kind: str, device: str, path: str, width: int = 0, height: int = 0,
                loop: bool = False) -> OpenCvSource | FolderSource:
    """Open a ``v4l2``, ``video`` or ``folder`` source; SourceError if it cannot be opened."""
    if kind == "v4l2":
        return OpenCvSource(device, width, height)
    if kind == "video":
        return OpenCvSource(path, loop=loop)
    if kind == "folder":
        return FolderSource(path, loop=loop)
    raise SourceError(f"unknown source kind {kind!r}")
