"""Key/value caches: the paged cache the sampler decodes with, and a contiguous one.

The paged cache (`PagedKVCache`, below) is what the continuous-batching sampler uses: fixed-size
pages per layer, each sequence's tokens in the pages its page-table row names, read by
`paged_attention` (pure JAX, the CPU path and the reference) or by the TPU Pallas kernel
(`pallas_paged_attention`, through `ssd_jax.kernels.ragged_paged_attention`).

The contiguous cache (`KVCache`: one `[batch, kv_heads, max_len, head_dim]` array of keys and one
of values per layer, written with one `dynamic_update_slice` per step) backs
`Transformer.forward_cached`, the simplest cached decode: the HF-parity tests check cached
decoding through it, independently of the pager.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssd_jax.models.attention import _MASKED
from ssd_jax.models.config import ModelConfig

CACHE_AXES = ("batch", "kv_heads", "cache_len", "head_dim")  # of each layer's keys and values


class KVCache(NamedTuple):
    keys: tuple[jax.Array, ...]  # one per layer
    values: tuple[jax.Array, ...]

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2]


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """An all-zero cache for `batch` rows of up to `max_len` tokens."""
    shape = (batch, config.num_kv_heads, max_len, config.head_dim)
    dt = jnp.dtype(dtype or config.dtype)
    zeros = tuple(jnp.zeros(shape, dt) for _ in range(config.num_layers))
    return KVCache(zeros, tuple(jnp.zeros(shape, dt) for _ in range(config.num_layers)))


# From this many rows on, decode attention on a CPU scores the keys with an elementwise product
# and sum (see `_scores`). Measured on SmolLM2-135M, 415 cache slots, ms per decode step with the
# elementwise sum vs the batched dot: 136 vs 150 at 32 rows, 87 vs 93 at 16, but 67 vs 62 at 8
# and 35.7 vs 32.5 at 1.
ELEMENTWISE_SCORES_FROM_ROWS = 16


def attend_one_token(q: jax.Array, keys: jax.Array, values: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention of one new token per row over one layer's cache (decode).

    q `[B, 1, H, D]`, keys / values `[B, K, S, D]`, mask `[B, 1, S]` → `[B, 1, H, D]`; the same
    math as `attention.grouped_query_attention` (float32 scores and softmax). The weights are
    laid out `[B, K, G, S]`, slots last, so that the values product reads each row's values
    as one plain `[G, S] x [S, D]` matmul (XLA's CPU backend: 27 instead of 41 ms per SmolLM2
    decode step at batch 32, where the weights' slots axis was not the last).
    """
    batch, _, num_heads, head_dim = q.shape
    num_kv = keys.shape[1]
    q = q.reshape(batch, num_kv, num_heads // num_kv, head_dim)
    scores = jnp.where(mask[:, 0, None, None, :], _scores(q, keys) * head_dim**-0.5, _MASKED)
    weights = jax.nn.softmax(scores, axis=3).astype(values.dtype)
    return jnp.einsum("bkgs,bksd->bkgd", weights, values).reshape(batch, 1, num_heads, head_dim)


def _scores(q: jax.Array, keys: jax.Array) -> jax.Array:
    """float32 `[B, K, G, S]` products of grouped queries `[B, K, G, D]` with the cached keys.

    XLA's CPU backend runs a batched dot of this shape on one core, while an elementwise product
    and sum is a loop fusion that it splits over all cores: at many rows, where reading the keys
    dominates, that is faster (`ELEMENTWISE_SCORES_FROM_ROWS`). Otherwise the cached keys are the
    dot's matrix rows (`bksd,bkgd->bksg`), ~40 % faster on CPU than the `[G, D] x [D, S]` form.
    """
    if keys.shape[0] >= ELEMENTWISE_SCORES_FROM_ROWS and jax.default_backend() == "cpu":
        return jnp.sum(keys[:, :, None].astype(jnp.float32) * q[:, :, :, None].astype(jnp.float32), axis=-1)
    return jnp.einsum("bksd,bkgd->bksg", keys, q, preferred_element_type=jnp.float32).swapaxes(2, 3)


# ---------------------------------------------------------------------------------------------
# The paged cache of the continuous-batching sampler.

NULL_PAGE = 0  # Never allocated: idle slots and padding tokens write here, and nothing reads it.
PAGED_AXES = ("cache_pages", "page", "kv_heads", "head_dim")  # of each layer's pages


class PagedKVCache(NamedTuple):
    """One array of pages per layer, `[num_pages, page_size, 2 * kv_heads, head_dim]`.

    Keys sit at the even heads and values at the odd ones: the layout of the TPU kernel
    `jax.experimental.pallas.ops.tpu.ragged_paged_attention`, so both attention paths read the
    same cache. A sequence's tokens live in the pages its page-table row names, in order.
    """

    pages: tuple[jax.Array, ...]

    @property
    def page_size(self) -> int:
        return self.pages[0].shape[1]


def init_paged_cache(config: ModelConfig, num_pages: int, page_size: int, dtype: str | None = None) -> PagedKVCache:
    """An all-zero cache of `num_pages` pages (page `NULL_PAGE` included) of `page_size` tokens."""
    shape = (num_pages, page_size, 2 * config.num_kv_heads, config.head_dim)
    return PagedKVCache(tuple(jnp.zeros(shape, jnp.dtype(dtype or config.dtype)) for _ in range(config.num_layers)))


def write_pages(pages: jax.Array, keys: jax.Array, values: jax.Array, page_ids: jax.Array,
                offsets: jax.Array) -> jax.Array:
    """`pages` with token `t`'s keys / values `[T, K, D]` written at (`page_ids[t]`, `offsets[t]`)."""
    tokens, num_kv, head_dim = keys.shape
    combined = jnp.stack([keys, values], axis=2).reshape(tokens, 2 * num_kv, head_dim)
    return pages.at[page_ids, offsets].set(combined.astype(pages.dtype))


def paged_attention(q: jax.Array, pages: jax.Array, page_table: jax.Array, kv_lens: jax.Array,
                    q_lens: jax.Array, window: int = 0, sinks: jax.Array | None = None) -> jax.Array:
    """Ragged paged attention in plain JAX (a gather of each sequence's pages): the CPU path and
    the reference of the TPU kernel.

    q `[Q, M, H, D]`: `M` query slots for each of `Q` sequences; sequence `i` has `kv_lens[i]`
    tokens in the pages `page_table[i]` (`[Q, P]`), the last `q_lens[i]` of which are its
    queries, in query slots `0 .. q_lens[i] - 1` (the rest are padding, left unspecified).
    Each query attends causally to its own sequence. Scores and softmax in float32. The gather
    reads all `P` pages of the table, so the caller bounds `P` by the live pages. `window` > 0
    lets a query see only its `window` most recent tokens (itself included) and `sinks [H]` adds
    one learned logit per head to every softmax (gpt-oss; see `sink_attention`).

    Keys and values are gathered as rows of `D` values straight into `[Q, K, P * page, D]`,
    the layout both products read as is: gathering whole pages instead and splitting them into
    keys and values costs three more passes over the live cache on XLA's CPU backend
    (benchmarks/README.md).
    """
    num_seqs, num_queries, num_heads, head_dim = q.shape
    num_pages, page_size, combined, _ = pages.shape
    num_kv, group = combined // 2, num_heads // (combined // 2)
    length = page_table.shape[1] * page_size
    slots = jnp.arange(length)
    token_rows = (page_table[:, slots // page_size] * page_size + slots % page_size) * combined  # [Q, T]
    key_rows = token_rows[:, None, :] + 2 * jnp.arange(num_kv)[None, :, None]  # [Q, K, T]
    rows = pages.reshape(num_pages * page_size * combined, head_dim)
    keys, values = (rows.at[key_rows + i].get(mode="promise_in_bounds").astype(q.dtype) for i in (0, 1))  # [Q, K, T, D]
    grouped = q.reshape(num_seqs, num_queries, num_kv, group, head_dim).transpose(0, 2, 3, 1, 4)
    grouped = grouped.reshape(num_seqs, num_kv, group * num_queries, head_dim)  # [Q, K, G * M, D]
    # Keys as the product's matrix rows: 2-3x faster on XLA's CPU backend than `qknd,qktd->qknt`.
    scores = jnp.einsum("qktd,qknd->qktn", keys, grouped, preferred_element_type=jnp.float32).swapaxes(2, 3)
    positions = (kv_lens - q_lens)[:, None] + jnp.arange(num_queries)  # [Q, M]
    mask = (slots[None, None, :] <= positions[:, :, None]) & (slots[None, None, :] < kv_lens[:, None, None])
    if window:
        mask = mask & (positions[:, :, None] - slots[None, None, :] < window)
    mask = jnp.tile(mask, (1, group, 1))[:, None]  # [Q, 1, G * M, T], queries ordered (g, m)
    scores = jnp.where(mask, scores * head_dim**-0.5, _MASKED)
    if sinks is None:
        weights = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
    else:
        sink = jnp.repeat(sinks.astype(jnp.float32).reshape(1, num_kv, group, 1), num_queries, axis=2)
        top = jnp.maximum(jnp.max(scores, axis=-1, keepdims=True), sink)
        exps = jnp.exp(scores - top)
        weights = (exps / (jnp.sum(exps, axis=-1, keepdims=True) + jnp.exp(sink - top))).astype(q.dtype)
    out = jnp.einsum("qknt,qktd->qknd", weights, values).reshape(num_seqs, num_kv, group, num_queries, head_dim)
    return out.transpose(0, 3, 1, 2, 4).reshape(num_seqs, num_queries, num_heads, head_dim)


def pallas_paged_attention(q: jax.Array, pages: jax.Array, page_table: jax.Array, kv_lens: jax.Array,
                           q_lens: jax.Array, block_sizes: tuple[int, int] | None = None) -> jax.Array:
    """`paged_attention` through the TPU Pallas kernel (which reads only each sequence's live pages).

    Takes the two shapes the sampler uses: one query per sequence (decode, `M == 1`) or one
    sequence (a prefill chunk, `Q == 1`); both pack into the kernel's concatenated queries as is.
    On a mesh of several devices each runs the kernel on its own replicas and KV heads; where the
    kernel cannot serve the shapes (`kernels.paged.unsupported_reason`, e.g. head_dim 64) this
    warns once and attends with `paged_attention`. `block_sizes` (kv pages, queries per block):
    None takes JAX's table tuned per TPU generation, for the TPU being compiled for (interpret
    mode on CPU must name them).
    """
    from ssd_jax.kernels.paged import log_fallback, on_mesh, unsupported_reason
    from ssd_jax.kernels.ragged_paged_attention import ragged_paged_attention

    if q.shape[1] != 1 and q.shape[0] != 1:
        raise ValueError(f"the kernel path takes one query per sequence or one sequence, got q {q.shape}")
    reason = unsupported_reason(q, pages)
    if reason:
        log_fallback(reason)
        return paged_attention(q, pages, page_table, kv_lens, q_lens)

    def attend(q, pages, page_table, kv_lens, q_lens):
        num_seqs, num_queries, num_heads, head_dim = q.shape
        cu_q_lens = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(q_lens.astype(jnp.int32))])
        out = ragged_paged_attention(
            q.reshape(num_seqs * num_queries, num_heads, head_dim), pages, kv_lens.astype(jnp.int32),
            page_table.astype(jnp.int32), cu_q_lens, jnp.array([num_seqs], jnp.int32), sm_scale=head_dim**-0.5,
            num_kv_pages_per_block=block_sizes and block_sizes[0],
            num_queries_per_block=block_sizes and block_sizes[1],
        )
        return out.reshape(q.shape)

    return on_mesh(attend, q, pages, page_table, kv_lens, q_lens)
