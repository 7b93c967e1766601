"""cuDNN fused attention (GPU) through `jax.nn.dot_product_attention(implementation="cudnn")`."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def unsupported_reason(q: jax.Array, segment_ids: jax.Array | None) -> str | None:
    """Why cuDNN cannot serve this call, or None. It takes no segment ids (packed rows would need
    a dense `[L, L]` mask), only half-precision inputs, and head dims that are multiples of 8 up
    to 128."""
    if segment_ids is not None:
        return "packed rows (segment ids) would need a dense [L, L] mask"
    if q.dtype not in (jnp.bfloat16, jnp.float16):
        return f"dtype {q.dtype} (cuDNN needs bfloat16 or float16)"
    if q.shape[-1] % 8 or q.shape[-1] > 128:
        return f"head_dim {q.shape[-1]} (cuDNN needs a multiple of 8, at most 128)"
    return None


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """Causal attention, q `[B, T, H, D]`, k/v `[B, K, T, D]` → `[B, T, H, D]` (GQA handled by cuDNN)."""
    k, v = (x.transpose(0, 2, 1, 3) for x in (k, v))
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn")
