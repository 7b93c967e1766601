"""Attention over a paged KV cache: the pure-JAX gather path against NumPy, and the TPU Pallas
kernel the sampler runs on TPU (`ssd_jax.kernels.ragged_paged_attention`, the same code run in
TPU interpret mode on CPU) against the pure-JAX path, on ragged page tables (sequences of
different lengths in scattered, shuffled pages), in float32 and bfloat16. The bfloat16 tolerance
is a few bfloat16 roundings: the two paths round the softmax weights at different points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas import tpu as pltpu

from ssd_jax.models.kv_cache import pallas_paged_attention, paged_attention

PAGE, KV_HEADS, GROUP, HEAD_DIM, PAGES_PER_SEQ = 16, 2, 2, 128, 4


def ragged_case(kv_lens, q_lens, seed=0, kv_heads=KV_HEADS, group=GROUP):
    """Random pages, each sequence in its own shuffled pages; queries padded to the longest q_len."""
    rng = np.random.default_rng(seed)
    num_seqs, max_q = len(kv_lens), max(q_lens)
    num_pages = 1 + num_seqs * PAGES_PER_SEQ
    pages = rng.standard_normal((num_pages, PAGE, 2 * kv_heads, HEAD_DIM)).astype(np.float32)
    table = (1 + rng.permutation(num_seqs * PAGES_PER_SEQ)).reshape(num_seqs, PAGES_PER_SEQ).astype(np.int32)
    q = rng.standard_normal((num_seqs, max_q, kv_heads * group, HEAD_DIM)).astype(np.float32)
    return q, pages, table, np.asarray(kv_lens, np.int32), np.asarray(q_lens, np.int32)


def numpy_attention(q, pages, table, kv_lens, q_lens):
    out = np.zeros_like(q, dtype=np.float64)
    for i, (kv_len, q_len) in enumerate(zip(kv_lens, q_lens)):
        tokens = pages[table[i]].reshape(-1, 2 * KV_HEADS, HEAD_DIM)[:kv_len]
        for m in range(q_len):
            position = kv_len - q_len + m
            for h in range(KV_HEADS * GROUP):
                keys, values = tokens[: position + 1, 2 * (h // GROUP)], tokens[: position + 1, 2 * (h // GROUP) + 1]
                scores = keys @ q[i, m, h] / np.sqrt(HEAD_DIM)
                weights = np.exp(scores - scores.max())
                out[i, m, h] = weights @ values / weights.sum()
    return out


def test_gather_path_matches_numpy():
    case = ragged_case(kv_lens=[1, 17, 64, 40], q_lens=[1, 5, 3, 1])
    got = np.asarray(jax.jit(paged_attention)(*case))
    expected = numpy_attention(*case)
    for i, q_len in enumerate(case[4]):
        np.testing.assert_allclose(got[i, :q_len], expected[i, :q_len], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("kv_lens, q_lens, kv_heads, group, dtype, atol", [
    # decode: one query per slot, ragged lengths (1 token, page boundaries, a full table)
    ([1, 17, 64, 33, 5], [1, 1, 1, 1, 1], 2, 2, "float32", 2e-5),
    ([1, 17, 64, 33, 5], [1, 1, 1, 1, 1], 2, 2, "bfloat16", 3e-2),
    # a prefill chunk: 20 queries after 30 cached tokens, in three query blocks
    ([50], [20], 2, 2, "float32", 2e-5),
    ([50], [20], 2, 2, "bfloat16", 3e-2),
    # 8 kv heads in float32: the kernel splits them into two head blocks
    ([9, 40], [1, 1], 8, 1, "float32", 2e-5),
])
def test_pallas_kernel_in_interpret_mode_matches_the_gather_path(kv_lens, q_lens, kv_heads, group, dtype, atol):
    q, pages, table, kv, ql = (jnp.asarray(x) for x in ragged_case(kv_lens, q_lens, seed=len(kv_lens),
                                                                    kv_heads=kv_heads, group=group))
    q, pages = q.astype(dtype), pages.astype(dtype)
    reference = np.asarray(paged_attention(q, pages, table, kv, ql).astype(jnp.float32))
    with pltpu.force_tpu_interpret_mode():
        kernel = np.asarray(pallas_paged_attention(q, pages, table, kv, ql, block_sizes=(2, 8)).astype(jnp.float32))
    for i, q_len in enumerate(q_lens):
        np.testing.assert_allclose(kernel[i, :q_len], reference[i, :q_len], atol=atol, rtol=0)
