"""The C allocator of a training process: freed memory is kept for the next step.

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's defaults a training
step's activations (a few MB each: a batch of 128 images at 28x28 with 16 channels is 6.4 MB)
are handed back to the OS when freed (mmapped blocks, a trimmed heap, a thread arena's emptied
heap) and page-faulted in, zeroed, on the next step. Measured on the smoke study's students: a
2-epoch trial took 0.2-0.8 M minor faults and 0.3-1.2 s of kernel time in a plain process,
more in a Ray Tune worker (whose trainable runs in a thread, on a thread arena). With the
settings below the same trials fault 20-100x less and train 10-13 % faster (measured once
with a one-off script; `bench scaling` shows the gain on the smoke study, runs 10-14); a
process keeps its peak heap, which it needed anyway.

Two ways to apply the same settings: ``keep_freed_memory()`` in a running process (the CLI's
own training: teacher, ``trial``, export), and ``worker_env()``, environment variables glibc
reads when a Ray worker process starts (a running process cannot move its threads' arenas).
Other C libraries (musl) ignore both.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

# (mallopt parameter number, environment variable, value)
SETTINGS = (
    # keep up to 1 GiB of freed memory at the heap's top instead of returning it to the OS
    (-1, "MALLOC_TRIM_THRESHOLD_", 1 << 30),
    # blocks up to 32 MiB (glibc's largest threshold) come from the heap, not from mmap
    (-3, "MALLOC_MMAP_THRESHOLD_", 32 << 20),
    # one arena: a thread's allocations live on the main heap, which the two above govern
    # (a thread arena's heaps are unmapped whenever they empty, whatever the thresholds)
    (-8, "MALLOC_ARENA_MAX", 1),
)


def worker_env() -> dict[str, str]:
    """Environment variables that give a new process these allocator settings (Ray workers)."""
    return {name: str(value) for _, name, value in SETTINGS}


def glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, None under another C library (musl, macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Apply the settings to this process (threads that already have an arena keep it).
    Returns False where the C library is not glibc: nothing changed."""
    mallopt = glibc_mallopt()
    return mallopt is not None and all(mallopt(param, value) for param, _, value in SETTINGS)
