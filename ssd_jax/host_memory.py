"""Keeping freed host memory for reuse, for jobs that run on XLA's CPU backend.

XLA's CPU runtime allocates a jitted call's temporaries with malloc, and glibc gives blocks
over 32 MiB back to the kernel when they are freed: every training step of SmolLM2-135M at
batch 2 × 256 then faults in ~1.4 GB of fresh zeroed pages (~357k page faults, ~0.6 s of
system time per 2.6 s step, and 3-4.5 s steps after the process sat idle for a few seconds).
Serving every allocation from one heap that is never trimmed lets later steps reuse the same
pages: after ~3 warm-up steps that grow the heap, 0 page faults and 2.3-2.45 s per step.

The price: the process keeps its peak host memory until it exits (7.9 GB for that training
run), which suits a training or sampling job, and every thread shares one malloc arena. It must
run before JAX starts its backend (its threads pick their malloc arenas when they first
allocate), so launch scripts call it first. Accelerator jobs keep their large buffers on the
device, so it is skipped wherever JAX could pick an accelerator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import pkgutil

from absl import logging

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_ACCELERATOR_MODULES = ("libtpu", "jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def _accelerator_possible() -> bool:
    """Whether JAX may run on something other than the CPU (decided without starting JAX)."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0] != "cpu"
    if any(importlib.util.find_spec(name) for name in _ACCELERATOR_MODULES):
        return True
    try:
        import jax_plugins
    except ImportError:
        return False
    return any(True for _ in pkgutil.iter_modules(jax_plugins.__path__))


@functools.cache
def retain_freed_host_memory() -> bool:
    """On a CPU-only JAX with glibc: one malloc arena, no per-block mmap, never trim the heap.

    Returns whether it applied. Call it before the first JAX computation; it is a no-op where
    JAX could use an accelerator, with another C library, or when called again.
    """
    if _accelerator_possible():
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # -1 as the trim threshold is SIZE_MAX inside glibc: never trim.
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1))
    applied = all([mallopt(parameter, value) == 1 for parameter, value in settings])
    logging.info("host memory: malloc keeps freed memory for reuse (%s)", "applied" if applied else "refused")
    return applied
