"""Blockwise causal self-attention (the flash-attention algorithm) in pure JAX.

Queries are processed in blocks of `block_q` rows; each block runs an online softmax over the
key/value blocks it can see, so neither pass ever holds more than one `[block_q, block_k]`
tile of scores per head: forward and backward memory are linear in the sequence length. Key
blocks after a query block (causal) are never visited, and a tile whose queries and keys share
no segment (packed rows) is skipped. The gradient is flash attention's: it recomputes each
tile from the saved per-query log-sum-exp instead of storing the weights.

This is the CPU path at long lengths and the reference the TPU/GPU kernels are tested against.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ssd_jax.models.attention import MASKED, grouped, ungrouped

DEFAULT_BLOCK = 512
_PAD_SEGMENT = -1  # padding appended to reach a whole block: attends only to itself


def blockwise_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array | None = None,
    *, block_q: int = DEFAULT_BLOCK, block_k: int = DEFAULT_BLOCK,
    sinks: jax.Array | None = None, window: jax.Array | int | None = None,
) -> jax.Array:
    """Causal self-attention, q `[B, T, H, D]`, k/v `[B, K, T, D]`, segment ids `[B, T]` (tokens
    attend only within their segment; None: one segment) → `[B, T, H, D]`.

    Scores and softmax run in float32 whatever the compute dtype; any length works (the blocks
    are padded internally); `block_q` must be a multiple of `block_k` or vice versa. `sinks`
    `[H]`: a learned logit per head that joins each softmax and attends to nothing (gpt-oss);
    `window`: each query sees only the `window` most recent tokens (0 or None: all). Tiles
    wholly outside the window are skipped like masked ones.
    """
    batch, length = q.shape[:2]
    if segment_ids is None:
        segment_ids = jnp.zeros((batch, length), jnp.int32)
    block_q, block_k = min(block_q, _round_up(length, 8)), min(block_k, _round_up(length, 8))
    padded = _round_up(length, max(block_q, block_k))
    pad = padded - length
    q = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    k, v = (jnp.pad(x, ((0, 0), (0, 0), (0, pad), (0, 0))) for x in (k, v))
    segments = jnp.pad(segment_ids.astype(jnp.int32), ((0, 0), (0, pad)), constant_values=_PAD_SEGMENT)
    num_kv = k.shape[1]
    sinks = (jnp.full((q.shape[2],), MASKED, jnp.float32) if sinks is None else sinks.astype(jnp.float32))
    window = jnp.asarray(0 if window is None else window, jnp.int32)
    out = _flash(grouped(q, num_kv), k, v, segments, sinks.reshape(num_kv, -1), window, block_q, block_k)
    return ungrouped(out)[:, :length]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _tile_mask(segments, window, q_start, k_start, block_q, block_k):
    """`[B, block_q, block_k]`: causal, same segment and within the window (0: none), for the
    tile at (q_start, k_start)."""
    q_seg = jax.lax.dynamic_slice_in_dim(segments, q_start, block_q, axis=1)
    k_seg = jax.lax.dynamic_slice_in_dim(segments, k_start, block_k, axis=1)
    behind = (q_start + jnp.arange(block_q))[:, None] - (k_start + jnp.arange(block_k))[None, :]
    visible = (behind >= 0) & ((behind < window) | (window == 0))
    return visible[None] & (q_seg[:, :, None] == k_seg[:, None, :])


def _tile_scores(q_tile, k_tile, mask, scale):
    """float32 `[B, K, G, bq, bk]` scaled scores, `MASKED` outside `mask`."""
    scores = jnp.einsum("bkgtd,bksd->bkgts", q_tile, k_tile, preferred_element_type=jnp.float32)
    return jnp.where(mask[:, None, None], scores * scale, MASKED)


def _k_blocks_seen(q_index, block_q, block_k):
    """How many key blocks the query block `q_index` can see (causal): the last one holds its last row."""
    return ((q_index + 1) * block_q - 1) // block_k + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _flash(q, k, v, segments, sinks, window, block_q, block_k):
    return _forward(q, k, v, segments, sinks, window, block_q, block_k)[0]


def _forward(q, k, v, segments, sinks, window, block_q, block_k):
    """Grouped q `[B, K, G, T, D]`, sink logits `[K, G]` → (output like q, float32 log-sum-exp
    `[B, K, G, T]` of the scores and the sink)."""
    batch, num_kv, group, length, head_dim = q.shape
    scale = head_dim**-0.5

    def query_block(q_index):
        q_start = q_index * block_q
        q_tile = jax.lax.dynamic_slice_in_dim(q, q_start, block_q, axis=3)

        def key_block(k_index, carry):
            k_start = k_index * block_k
            mask = _tile_mask(segments, window, q_start, k_start, block_q, block_k)

            def update(carry):
                top, total, acc = carry
                k_tile = jax.lax.dynamic_slice_in_dim(k, k_start, block_k, axis=2)
                v_tile = jax.lax.dynamic_slice_in_dim(v, k_start, block_k, axis=2)
                scores = _tile_scores(q_tile, k_tile, mask, scale)
                new_top = jnp.maximum(top, jnp.max(scores, axis=-1))
                correction = jnp.exp(top - new_top)
                exps = jnp.exp(scores - new_top[..., None])
                total = total * correction + jnp.sum(exps, axis=-1)
                acc = acc * correction[..., None] + jnp.einsum(
                    "bkgts,bksd->bkgtd", exps.astype(v.dtype), v_tile, preferred_element_type=jnp.float32)
                return new_top, total, acc

            return jax.lax.cond(jnp.any(mask), update, lambda c: c, carry)

        stats = (batch, num_kv, group, block_q)
        init = (jnp.full(stats, MASKED, jnp.float32), jnp.zeros(stats, jnp.float32),
                jnp.zeros((*stats, head_dim), jnp.float32))
        top, total, acc = jax.lax.fori_loop(0, _k_blocks_seen(q_index, block_q, block_k), key_block, init)
        sink = sinks[None, :, :, None]
        with_sink = jnp.maximum(top, sink)
        correction = jnp.exp(top - with_sink)
        total = total * correction + jnp.exp(sink - with_sink)
        return (acc * correction[..., None] / total[..., None]).astype(q.dtype), with_sink + jnp.log(total)

    outs, log_norms = jax.lax.map(query_block, jnp.arange(length // block_q))
    out = jnp.moveaxis(outs, 0, 3).reshape(q.shape)
    log_norm = jnp.moveaxis(log_norms, 0, 3).reshape(batch, num_kv, group, length)
    return out, (q, k, v, segments, sinks, window, out, log_norm)


def _backward(block_q, block_k, residuals, d_out):
    q, k, v, segments, sinks, window, out, log_norm = residuals
    batch, num_kv, group, length, head_dim = q.shape
    scale = head_dim**-0.5
    row_dot = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)  # [B, K, G, T]

    def tile_grads(q_start, k_start, mask):
        """The tile's weights and score gradients, recomputed from the saved log-sum-exp."""
        q_tile = jax.lax.dynamic_slice_in_dim(q, q_start, block_q, axis=3)
        k_tile = jax.lax.dynamic_slice_in_dim(k, k_start, block_k, axis=2)
        v_tile = jax.lax.dynamic_slice_in_dim(v, k_start, block_k, axis=2)
        d_out_tile = jax.lax.dynamic_slice_in_dim(d_out, q_start, block_q, axis=3)
        lse = jax.lax.dynamic_slice_in_dim(log_norm, q_start, block_q, axis=3)
        dot = jax.lax.dynamic_slice_in_dim(row_dot, q_start, block_q, axis=3)
        weights = jnp.exp(_tile_scores(q_tile, k_tile, mask, scale) - lse[..., None])
        d_weights = jnp.einsum("bkgtd,bksd->bkgts", d_out_tile, v_tile, preferred_element_type=jnp.float32)
        d_scores = weights * (d_weights - dot[..., None]) * scale
        return q_tile, k_tile, d_out_tile, weights, d_scores

    def d_query_block(q_index):
        q_start = q_index * block_q

        def key_block(k_index, d_q):
            k_start = k_index * block_k
            mask = _tile_mask(segments, window, q_start, k_start, block_q, block_k)

            def update(d_q):
                _, k_tile, _, _, d_scores = tile_grads(q_start, k_start, mask)
                return d_q + jnp.einsum("bkgts,bksd->bkgtd", d_scores.astype(k.dtype), k_tile,
                                        preferred_element_type=jnp.float32)

            return jax.lax.cond(jnp.any(mask), update, lambda d: d, d_q)

        zeros = jnp.zeros((batch, num_kv, group, block_q, head_dim), jnp.float32)
        return jax.lax.fori_loop(0, _k_blocks_seen(q_index, block_q, block_k), key_block, zeros).astype(q.dtype)

    def d_key_block(k_index):
        k_start = k_index * block_k
        first_q_block = (k_start // block_q)  # query blocks before it cannot see this key block

        def query_block(q_index, grads):
            q_start = q_index * block_q
            mask = _tile_mask(segments, window, q_start, k_start, block_q, block_k)

            def update(grads):
                d_k, d_v = grads
                q_tile, _, d_out_tile, weights, d_scores = tile_grads(q_start, k_start, mask)
                d_v = d_v + jnp.einsum("bkgts,bkgtd->bksd", weights.astype(v.dtype), d_out_tile,
                                       preferred_element_type=jnp.float32)
                d_k = d_k + jnp.einsum("bkgts,bkgtd->bksd", d_scores.astype(q.dtype), q_tile,
                                       preferred_element_type=jnp.float32)
                return d_k, d_v

            return jax.lax.cond(jnp.any(mask), update, lambda g: g, grads)

        zeros = jnp.zeros((batch, num_kv, block_k, head_dim), jnp.float32)
        d_k, d_v = jax.lax.fori_loop(first_q_block, length // block_q, query_block, (zeros, zeros))
        return d_k.astype(k.dtype), d_v.astype(v.dtype)

    d_q = jnp.moveaxis(jax.lax.map(d_query_block, jnp.arange(length // block_q)), 0, 3).reshape(q.shape)
    d_k, d_v = jax.lax.map(d_key_block, jnp.arange(length // block_k))
    d_k, d_v = (jnp.moveaxis(d, 0, 2).reshape(k.shape) for d in (d_k, d_v))
    # d lse / d sink is the sink's weight; the output does not depend on the sink otherwise.
    d_sinks = -jnp.sum(jnp.exp(sinks[None, :, :, None] - log_norm) * row_dot, axis=(0, 3))
    return d_q, d_k, d_v, None, d_sinks, None


_flash.defvjp(_forward, _backward)
