"""Process memory settings for long-running nodes.

glibc gives each thread that allocates its own malloc arena (up to 8 per core); a
multi-threaded executor moving megabyte images between threads fragments them, and the
resident size of a bringup grew 23 % over 9 minutes of picking (`perception soak`, default
arenas) while it stayed flat with two arenas. ``limit_malloc_arenas`` sets that limit from
inside the process (the same as ``MALLOC_ARENA_MAX``) before its threads start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Limit glibc to ``arenas`` malloc arenas unless ``MALLOC_ARENA_MAX`` is set (the
    user's choice wins); True when the limit was applied. A no-op off glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to limit
        return False
