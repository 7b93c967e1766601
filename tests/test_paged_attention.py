"""Attention over a paged KV cache: the pure-JAX gather path against NumPy, and the TPU Pallas
kernel (`ragged_paged_attention`, run in interpret mode on CPU) against the pure-JAX path, on
ragged page tables (sequences of different lengths in scattered, shuffled pages).

The kernel comparison is a strict expected failure: JAX 0.10.2's TPU interpret mode raises
inside the kernel (see its marker), so on this JAX the kernel is not checked numerically."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas import tpu as pltpu

from ssd_jax.models.kv_cache import pallas_paged_attention, paged_attention

PAGE, KV_HEADS, GROUP, HEAD_DIM, PAGES_PER_SEQ = 16, 2, 2, 128, 4


def ragged_case(kv_lens, q_lens, seed=0):
    """Random pages, each sequence in its own shuffled pages; queries padded to the longest q_len."""
    rng = np.random.default_rng(seed)
    num_seqs, max_q = len(kv_lens), max(q_lens)
    num_pages = 1 + num_seqs * PAGES_PER_SEQ
    pages = rng.standard_normal((num_pages, PAGE, 2 * KV_HEADS, HEAD_DIM)).astype(np.float32)
    table = (1 + rng.permutation(num_seqs * PAGES_PER_SEQ)).reshape(num_seqs, PAGES_PER_SEQ).astype(np.int32)
    q = rng.standard_normal((num_seqs, max_q, KV_HEADS * GROUP, HEAD_DIM)).astype(np.float32)
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


@pytest.mark.xfail(
    raises=jax.errors.JaxRuntimeError, strict=True,
    reason="JAX 0.10.2's TPU interpreter cannot index a reshaped ref ('ReshapeTransform' object has no attribute "
           "'indices'), which this kernel does after each DMA; strict, so the test reports when JAX fixes it")
@pytest.mark.parametrize("kv_lens, q_lens", [
    ([1, 17, 64, 33, 5], [1, 1, 1, 1, 1]),  # decode: one query per slot, ragged lengths
    ([50], [20]),  # a prefill chunk: 20 queries after 30 cached tokens
])
def test_pallas_kernel_in_interpret_mode_matches_the_gather_path(kv_lens, q_lens):
    q, pages, table, kv, ql = (jnp.asarray(x) for x in ragged_case(kv_lens, q_lens, seed=len(kv_lens)))
    reference = np.asarray(paged_attention(q, pages, table, kv, ql))
    with pltpu.force_tpu_interpret_mode():
        kernel = np.asarray(pallas_paged_attention(q, pages, table, kv, ql, block_sizes=(2, 8)))
    for i, q_len in enumerate(q_lens):
        np.testing.assert_allclose(kernel[i, :q_len], reference[i, :q_len], atol=2e-5, rtol=1e-5)
