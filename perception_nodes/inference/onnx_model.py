"""ONNX Runtime sessions with explicit providers and checked inputs, and the model manifest.

Providers: ``auto`` takes TensorRT, then CUDA, then CPU, whichever this onnxruntime build
offers; an explicit list must be available or the node refuses to start. Models are listed in
``models/manifest.yaml`` with their sha256, so a node never runs a file other than the one
its model card describes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import yaml

from perception_nodes import resources

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                       "CPUExecutionProvider")
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
               "tensor(bool)": np.bool_}


class ModelError(RuntimeError):
    """A model file, manifest entry or input that cannot be used."""


def select_providers(requested: str | list[str] = "auto",
                     available: list[str] | None = None) -> list[str]:
    """Execution providers in preference order.

    Args:
        requested: ``auto``, ``cpu``, ``cuda``, ``tensorrt``, or a list of ORT provider names.
        available: what this build offers (default: ``ort.get_available_providers()``).
    """
    available = list(ort.get_available_providers() if available is None else available)
    aliases = {"cpu": ["CPUExecutionProvider"],
               "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
               "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                            "CPUExecutionProvider"]}
    if requested == "auto":
        return [p for p in PROVIDER_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    wanted = aliases.get(requested, requested) if isinstance(requested, str) else requested
    if isinstance(wanted, str):
        raise ModelError(f"unknown provider {requested!r}; use auto, cpu, cuda, tensorrt")
    missing = [p for p in wanted if p not in available]
    if missing:
        raise ModelError(f"providers {missing} are not available; this onnxruntime offers "
                         f"{available}")
    return list(wanted)


class OnnxModel:
    """One ONNX model in an ONNX Runtime session; ``run`` checks names, dtypes, shapes and
    finiteness of its inputs before running."""

    def __init__(self, path: Path | str, providers: str | list[str] = "auto",
                 threads: int = 0) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        # Idle ORT workers would otherwise spin after each run and take the cores from the
        # numpy post-processing that follows it in the same callback.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options,
                                            providers=select_providers(providers))
        self.provider = self.session.get_providers()[0]
        self.inputs = {i.name: (tuple(i.shape), _ORT_DTYPES.get(i.type))
                       for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on named inputs; returns named outputs. ModelError on a bad input."""
        if set(feeds) != set(self.inputs):
            raise ModelError(f"inputs {sorted(feeds)} do not match the model's "
                             f"{sorted(self.inputs)}")
        for name, value in feeds.items():
            shape, dtype = self.inputs[name]
            if dtype is not None and value.dtype != dtype:
                raise ModelError(f"input {name!r} is {value.dtype}, the model takes {dtype}")
            if value.ndim != len(shape) or any(
                    isinstance(d, int) and d != v for d, v in zip(shape, value.shape,
                                                                  strict=True)):
                raise ModelError(f"input {name!r} has shape {value.shape}, the model takes "
                                 f"{shape}")
            if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
                raise ModelError(f"input {name!r} contains NaN or infinity")
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds),
                        strict=True))


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MANIFEST = "manifest.yaml"


def read_manifest(models_dir: Path | str) -> dict[str, dict]:
    """The ``models`` entries of ``models_dir/manifest.yaml`` (empty when there is none)."""
    path = Path(models_dir) / MANIFEST
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return (data or {}).get("models") or {}


def write_manifest(models_dir: Path | str, entries: dict[str, dict], comment: str) -> None:
    """Replace ``models_dir/manifest.yaml`` with ``entries`` under a ``# comment`` line,
    atomically (written beside, flushed to disk, renamed over it)."""
    path = Path(models_dir) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        f.write(f"# {comment}\n" + yaml.safe_dump({"models": entries}, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def resolve_model(name: str, models_dir: Path | str | None = None) -> Path:
    """Path of model ``name`` from ``models_dir/manifest.yaml``, its sha256 verified.

    ``models_dir`` empty or None: the package's models (:func:`resources.models_dir`: the
    source tree, or ``share/perception/models`` when installed).

    Raises:
        ModelError: unknown name (the message lists the known ones), a file outside
            ``models_dir``, a missing file, or a file whose sha256 differs from the
            manifest's.
    """
    models_dir = Path(models_dir) if models_dir else resources.models_dir()
    entries = read_manifest(models_dir)
    if name not in entries:
        raise ModelError(f"no model {name!r} in {models_dir / 'manifest.yaml'}; known: "
                         f"{sorted(entries)}")
    entry = entries[name]
    path = models_dir / entry["file"]
    # a manifest names files in its own folder: nothing it says may load code from elsewhere
    if not path.resolve().is_relative_to(models_dir.resolve()):
        raise ModelError(f"model {name!r}: file {entry['file']!r} lies outside {models_dir}")
    if not path.is_file():
        raise ModelError(f"model {name!r}: file {path} is missing")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ModelError(f"model {name!r}: {path} has sha256 {actual}, the manifest says "
                         f"{entry['sha256']}")
    return path
