"""Where the package's data lives: models, config and launch files.

In development the source tree holds them beside ``perception_nodes/``. Installed by colcon
(or pip), setup.py puts them under ``<prefix>/share/perception/`` while the Python package
lands in ``<prefix>/lib/python3.X/site-packages``, so the directory is found, in order: the
source tree; the ament index (``AMENT_PREFIX_PATH``, set by sourcing the workspace); the
install prefix that holds this very module; ``sys.prefix``.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "perception"
MARKER = Path("models") / "manifest.yaml"


def _ament_share() -> Path | None:
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError, ValueError, LookupError):  # OSError: unsourced
        return None


def share_candidates(module_file: Path | None = None) -> list[Path]:
    """Directories that may hold ``models/``, ``config/`` and ``launch/``, in the order tried."""
    here = (module_file or Path(__file__)).resolve()
    found = [here.parent.parent]  # the source tree: perception_nodes/..
    ament = _ament_share()
    if ament is not None:
        found.append(ament)
    # <prefix>/lib/python3.X/site-packages/perception_nodes/resources.py -> <prefix>
    found += [parent / "share" / PACKAGE for parent in here.parents]
    found.append(Path(sys.prefix) / "share" / PACKAGE)
    return found


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The directory holding ``models/manifest.yaml``, ``config/`` and ``launch/``.

    Raises:
        FileNotFoundError: none of :func:`share_candidates` holds the models manifest.
    """
    candidates = share_candidates()
    for path in candidates:
        if (path / MARKER).is_file():
            return path
    raise FileNotFoundError(
        f"perception's data (models/manifest.yaml) is in none of: "
        f"{', '.join(str(p) for p in candidates)}; source the workspace's setup file or "
        f"reinstall the package")


def models_dir() -> Path:
    """The package's ``models/`` (ONNX files, cards, ``manifest.yaml``)."""
    return share_dir() / "models"


def default_config() -> Path:
    """The package's ``config/perception.yaml``."""
    return share_dir() / "config" / "perception.yaml"
