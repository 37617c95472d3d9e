"""A model store: versions of a model, one sub-folder each, never overwritten, listed in the
store's ``manifest.yaml`` with their sha256 (the format of ``models/manifest.yaml``, so a
node's ``models_dir`` can point at a store). A version is named ``NAME@vN``; a node switches
to it when its model parameter is set at run time, and a rollback is setting the previous
one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from perception_nodes.inference.onnx_model import read_manifest, sha256_of, write_manifest

VERSION = re.compile(r"^(?P<name>[A-Za-z0-9_]+)@v(?P<n>[0-9]+)$")


def versions(store: Path | str, name: str) -> list[str]:
    """The versions of ``name`` in the store, oldest first."""
    found = [(int(m["n"]), key) for key in read_manifest(store)
             if (m := VERSION.match(key)) and m["name"] == name]
    return [key for _, key in sorted(found)]


def add_version(store: Path | str, name: str, model: Path | str, card: str = "",
                checkpoint: Path | str | None = None) -> str:
    """Copy ``model`` (an ONNX file) into the store as the next version of ``name``, with
    ``card`` as its ``card.md`` and ``checkpoint`` (its training weights, what the next
    adaptation starts from) as ``checkpoint.pt``; returns the version name. The version's
    folder is new (an existing one is never overwritten) and the manifest is replaced
    atomically."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"a model name is letters, digits and _, got {name!r}")
    store = Path(store)
    existing = versions(store, name)
    n = int(VERSION.match(existing[-1])["n"]) + 1 if existing else 1
    folder = store / name / f"v{n}"
    folder.mkdir(parents=True, exist_ok=False)
    shutil.copyfile(model, folder / "model.onnx")
    if checkpoint is not None:
        shutil.copyfile(checkpoint, folder / "checkpoint.pt")
    (folder / "card.md").write_text(card or f"# {name} v{n}\n")
    entries = read_manifest(store)
    key = f"{name}@v{n}"
    entries[key] = {"file": f"{name}/v{n}/model.onnx", "sha256": sha256_of(folder / "model.onnx")}
    write_manifest(store, entries, "Model store: one folder per version, never overwritten "
                   "(perception learning.model_store).")
    return key
