"""Decode attention over the KV cache against a plain NumPy attention, on both of its score paths."""

import jax
import numpy as np
import pytest

from ssd_jax.models.kv_cache import ELEMENTWISE_SCORES_FROM_ROWS, attend_one_token


def numpy_attention(q, keys, values, mask):
    """q [B, 1, H, D], keys / values [B, K, S, D], mask [B, 1, S]: each query head reads its KV head."""
    batch, _, num_heads, head_dim = q.shape
    group = num_heads // keys.shape[1]
    out = np.zeros_like(q, dtype=np.float64)
    for b in range(batch):
        for h in range(num_heads):
            scores = keys[b, h // group] @ q[b, 0, h] / np.sqrt(head_dim)
            scores = np.where(mask[b, 0], scores, -np.inf)
            weights = np.exp(scores - scores.max())
            out[b, 0, h] = (weights / weights.sum()) @ values[b, h // group]
    return out


@pytest.mark.parametrize("batch", [3, ELEMENTWISE_SCORES_FROM_ROWS])  # the batched dot; the elementwise sum
def test_attend_one_token_matches_numpy(batch):
    rng = np.random.default_rng(batch)
    num_kv, group, slots, head_dim = 2, 3, 37, 16
    q = rng.standard_normal((batch, 1, num_kv * group, head_dim)).astype(np.float32)
    keys, values = (rng.standard_normal((batch, num_kv, slots, head_dim)).astype(np.float32) for _ in range(2))
    mask = rng.random((batch, 1, slots)) < 0.6
    mask[:, :, -1] = True  # the token's own slot
    got = np.asarray(jax.jit(attend_one_token)(q, keys, values, mask))
    np.testing.assert_allclose(got, numpy_attention(q, keys, values, mask), atol=2e-6, rtol=1e-5)
