"""The one entry point for causal self-attention over full sequences, implementation by config.

`implementation` is one of `ATTENTION_IMPLEMENTATIONS`:
- `reference`: dense scores and mask (`attention.grouped_query_attention`), quadratic memory;
- `blockwise`: the pure-JAX flash algorithm (`blockwise_attention`), linear memory, any backend;
- `splash`: Pallas splash attention on TPU (`ssd_jax.kernels.splash`), sharded over the mesh;
- `cudnn`: cuDNN fused attention on GPU (`ssd_jax.kernels.cudnn`);
- `auto`: splash on TPU, cuDNN on GPU, and on CPU the reference up to `REFERENCE_MAX_LENGTH`
  tokens (faster there, see benchmarks/README.md) and blockwise beyond.
A kernel that cannot serve a call (its backend absent, a shape it does not take) falls back to
blockwise and logs why, once per reason; it never computes something else.

Causality follows the token's index in the row; with packed rows the segment ids keep tokens
of different examples apart, so per-segment positions need not be passed.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp

from ssd_jax.kernels import cudnn, splash
from ssd_jax.models import attention, sink_attention
from ssd_jax.models.config import ATTENTION_IMPLEMENTATIONS
from ssd_jax.models.blockwise_attention import blockwise_attention

logger = logging.getLogger(__name__)

REFERENCE_MAX_LENGTH = 1024  # `auto` on CPU: the reference up to here (faster), blockwise beyond (benchmarks/attention.py)


def self_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array | None,
                   implementation: str = "auto", *, sinks: jax.Array | None = None,
                   window: jax.Array | None = None) -> jax.Array:
    """q `[B, T, H, D]`, k/v `[B, K, T, D]`, segment ids `[B, T]` or None → `[B, T, H, D]`.

    `sinks` `[H]` (learned sink logits) and `window` (a sliding window, 0: none) are served by
    the reference (`sink_attention`) and blockwise implementations; splash and cuDNN fall back
    to blockwise for them, logged."""
    chosen = choose_implementation(implementation, q, k, segment_ids)
    if sinks is not None or window is not None:
        if chosen == "reference":
            mask = attention.causal_segment_mask(segment_ids, q.shape[1], q.shape[0])
            if window is not None:
                mask = sink_attention.window_mask(mask, window, jnp.arange(q.shape[1]))
            return sink_attention.sink_attention(q, k, v, mask, sinks)
        if chosen != "blockwise":
            _log_fallback(chosen, "attention sinks and sliding windows are not implemented in it")
        return blockwise_attention(q, k, v, segment_ids, sinks=sinks, window=window)
    if chosen == "reference":
        mask = attention.causal_segment_mask(segment_ids, q.shape[1], q.shape[0])
        return attention.grouped_query_attention(q, k, v, mask)
    if chosen == "splash":
        return splash.splash_attention(q, k, v, segment_ids)
    if chosen == "cudnn":
        return cudnn.cudnn_attention(q, k, v)
    return blockwise_attention(q, k, v, segment_ids)


def platform() -> str:
    """The platform being traced for: the context mesh's (AOT compiles for a TPU topology on a
    CPU host set one), else the default backend."""
    mesh = jax.sharding.get_abstract_mesh()
    return jax.default_backend() if mesh.empty else mesh.abstract_device.platform


def choose_implementation(implementation: str, q: jax.Array, k: jax.Array, segment_ids: jax.Array | None) -> str:
    """The implementation that will run: `implementation`, resolved (`auto`) and checked."""
    if implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention implementation {implementation!r}: choose one of {ATTENTION_IMPLEMENTATIONS}")
    backend = platform()
    if implementation == "auto":
        implementation = {"tpu": "splash", "gpu": "cudnn", "cuda": "cudnn", "rocm": "blockwise"}.get(backend)
        if implementation is None:
            return "reference" if q.shape[1] <= REFERENCE_MAX_LENGTH else "blockwise"
    reason = None
    if implementation == "splash":
        if backend != "tpu":
            reason = f"splash attention needs a TPU (platform: {backend})"
        else:
            reason = splash.unsupported_reason(q.shape, k.shape, jax.sharding.get_abstract_mesh())
    elif implementation == "cudnn":
        if backend not in ("gpu", "cuda"):
            reason = f"cuDNN attention needs an NVIDIA GPU (platform: {backend})"
        else:
            reason = cudnn.unsupported_reason(q, segment_ids)
    if reason:
        _log_fallback(implementation, reason)
        return "blockwise"
    _log_choice(implementation, backend)
    return implementation


@functools.lru_cache(maxsize=64)
def _log_fallback(implementation: str, reason: str) -> None:
    logger.warning("attention: %s cannot serve this call (%s); using blockwise attention", implementation, reason)


@functools.lru_cache(maxsize=64)
def _log_choice(implementation: str, backend: str) -> None:
    logger.info("attention: %s on %s", implementation, backend)
