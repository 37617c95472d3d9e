"""A folder of grasp samples that never holds a partial one (no ROS, no torch).

Layout::

    DIR/manifest.json        {"version": 1, "samples": [{"file", "stamp_ns", "success",
                               "sealed_cups", "sha256"}, ...]}
    DIR/samples/000017.npz   before, after (H, W, 3) uint8 RGB; grasp_mask (H, W) uint8
                             (1 = under an active cup); vacuum_kpa (n_cups,) float32;
                             pose (4, 4) float64 in the camera optical frame; stamp_ns,
                             success, sealed_cups (0-d), as in the manifest;
                             optional (a camera with depth): before_depth (H, W) float32 m
                             registered to before (NaN: no measurement), camera_k (3, 3)

Every file is written beside its final name, flushed to disk, then renamed over it (rename
is atomic on POSIX), and the folder is synced: after a crash or a kill a reader sees the old
file or the new one, never half of one. A sample is written before the manifest that lists
it; a sample the manifest does not list yet (a kill between the two renames) is adopted the
next time the folder is opened, after its checksum is read back. A full disk raises
:class:`DatasetWriteError` and leaves the folder as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
SAMPLES = "samples"
TMP_SUFFIX = ".partial"
SAMPLE_KEYS = ("before", "after", "grasp_mask", "vacuum_kpa", "pose")
OPTIONAL_KEYS = ("before_depth", "camera_k")  # what an RGB-H model needs to adapt


class DatasetWriteError(OSError):
    """A sample could not be stored (disk full, permissions); nothing partial was left."""


@dataclass
class GraspSample:
    """One grasp: the frames around it, where the active cups were, and the gauge.

    before, after: ``(H, W, 3) uint8`` RGB, the last frame before the arm entered the view
    and the first stable one after it left; grasp_mask ``(H, W) uint8`` 1 under an active
    cup; vacuum_kpa ``(n_cups,) float32`` below atmosphere; pose ``4x4`` of the gripper in
    the camera optical frame; stamp_ns of ``before``; success: the gauge says it held.
    """

    before: np.ndarray
    after: np.ndarray
    grasp_mask: np.ndarray
    vacuum_kpa: np.ndarray
    pose: np.ndarray
    stamp_ns: int
    success: bool
    sealed_cups: int
    before_depth: np.ndarray | None = None
    camera_k: np.ndarray | None = None

    def check(self) -> None:
        """Raise ValueError if shapes or dtypes break the layout above."""
        h, w = self.grasp_mask.shape[:2]
        for name in ("before", "after"):
            img = getattr(self, name)
            if img.shape != (h, w, 3) or img.dtype != np.uint8:
                raise ValueError(f"{name} must be ({h}, {w}, 3) uint8, got {img.dtype} "
                                 f"{img.shape}")
        if self.grasp_mask.dtype != np.uint8 or self.grasp_mask.ndim != 2:
            raise ValueError("grasp_mask must be (H, W) uint8")
        if np.shape(self.pose) != (4, 4):
            raise ValueError(f"pose must be 4x4, got {np.shape(self.pose)}")
        if (self.before_depth is None) != (self.camera_k is None):
            raise ValueError("before_depth and camera_k come together")
        if self.before_depth is not None:
            if self.before_depth.shape != (h, w) or self.before_depth.dtype != np.float32:
                raise ValueError(f"before_depth must be ({h}, {w}) float32, got "
                                 f"{self.before_depth.dtype} {self.before_depth.shape}")
            if np.shape(self.camera_k) != (3, 3):
                raise ValueError(f"camera_k must be 3x3, got {np.shape(self.camera_k)}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _encode(sample: GraspSample) -> bytes:
    buf = io.BytesIO()
    depth = {} if sample.before_depth is None else {
        "before_depth": sample.before_depth, "camera_k": np.asarray(sample.camera_k, np.float64)}
    np.savez_compressed(buf, **depth, before=sample.before, after=sample.after,
                        grasp_mask=sample.grasp_mask,
                        vacuum_kpa=np.asarray(sample.vacuum_kpa, np.float32),
                        pose=np.asarray(sample.pose, np.float64),
                        stamp_ns=np.int64(sample.stamp_ns), success=np.bool_(sample.success),
                        sealed_cups=np.int64(sample.sealed_cups))
    return buf.getvalue()


def _entry(name: str, data: bytes, stamp_ns: int, success: bool, sealed_cups: int) -> dict:
    return {"file": name, "stamp_ns": int(stamp_ns), "success": bool(success),
            "sealed_cups": int(sealed_cups), "sha256": hashlib.sha256(data).hexdigest()}


def read_manifest(root: Path | str) -> list[dict]:
    """The manifest's entries (an empty list for a new folder)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["samples"])


def load_sample(root: Path | str, entry: dict) -> dict[str, np.ndarray]:
    """The arrays of one manifest entry (:data:`SAMPLE_KEYS`, and the :data:`OPTIONAL_KEYS`
    it has), its checksum verified (ValueError if it differs or if the entry names a file
    outside the dataset's samples folder)."""
    folder = Path(root) / SAMPLES
    path = folder / entry["file"]
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{entry['file']!r} lies outside the dataset's {folder}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{entry['file']}: checksum differs from the manifest")
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in SAMPLE_KEYS + OPTIONAL_KEYS if k in npz.files}


class GraspDatasetWriter:
    """Appends samples to ``root``; see the module docstring for the guarantees.

    Args:
        root: the dataset folder (created if missing).
        min_free_mb: refuse a sample when the disk would keep less than this free.
    """

    def __init__(self, root: Path | str, min_free_mb: float = 100.0) -> None:
        self.root = Path(root)
        self.samples_dir = self.root / SAMPLES
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self.min_free_bytes = int(min_free_mb * 1e6)
        self.entries = read_manifest(self.root)
        self._recover()

    def _recover(self) -> None:
        """Drop files a kill left half-written; adopt whole samples the manifest missed."""
        for tmp in list(self.samples_dir.glob("*" + TMP_SUFFIX)) + \
                list(self.root.glob("*" + TMP_SUFFIX)):
            tmp.unlink()
        listed = {e["file"] for e in self.entries}
        adopted = False
        for path in sorted(self.samples_dir.glob("*.npz")):
            if path.name in listed:
                continue
            data = path.read_bytes()
            try:
                with np.load(io.BytesIO(data)) as npz:
                    entry = _entry(path.name, data, int(npz["stamp_ns"]), bool(npz["success"]),
                                   int(npz["sealed_cups"]))
                    complete = all(k in npz.files for k in SAMPLE_KEYS)
            except (OSError, ValueError, KeyError):
                complete = False
            if not complete:  # cannot happen with atomic renames: left out, never listed
                continue
            self.entries.append(entry)
            adopted = True
        if adopted:
            self._write_manifest()

    def _write_manifest(self) -> None:
        body = json.dumps({"version": 1, "samples": self.entries}, indent=0).encode()
        _write_atomic(self.root / MANIFEST, body)

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, sample: GraspSample) -> dict:
        """Store one sample; returns its manifest entry.

        Raises:
            ValueError: a sample that breaks the layout.
            DatasetWriteError: no room or an I/O error; the folder is unchanged.
        """
        sample.check()
        data = _encode(sample)
        free = shutil.disk_usage(self.root).free
        if free - 2 * len(data) < self.min_free_bytes:
            raise DatasetWriteError(f"{free / 1e6:.0f} MB free, {self.min_free_bytes / 1e6:.0f} "
                                    "MB must stay free: sample not written")
        index = 1 + max((int(e["file"].split(".")[0]) for e in self.entries), default=-1)
        entry = _entry(f"{index:06d}.npz", data, sample.stamp_ns, sample.success,
                       sample.sealed_cups)
        path = self.samples_dir / entry["file"]
        try:
            _write_atomic(path, data)
            self.entries.append(entry)
            try:
                self._write_manifest()
            except OSError:
                self.entries.pop()
                path.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DatasetWriteError(f"sample not written: {exc}") from exc
        return entry
