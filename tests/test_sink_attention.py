"""Blockwise attention with gpt-oss's learned sinks and sliding windows equals the reference
(`sink_attention`), forward and gradients, with packed segments, GQA and ragged lengths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssd_jax.models.attention import causal_segment_mask
from ssd_jax.models.blockwise_attention import blockwise_attention
from ssd_jax.models.sink_attention import sink_attention, window_mask


def _inputs(batch=2, length=75, heads=4, kv_heads=2, head_dim=16, seed=0):
    keys = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(keys[0], (batch, length, heads, head_dim))
    k = jax.random.normal(keys[1], (batch, kv_heads, length, head_dim))
    v = jax.random.normal(keys[2], (batch, kv_heads, length, head_dim))
    sinks = 2.0 * jax.random.normal(keys[3], (heads,))
    segments = jnp.asarray(np.repeat([[1] * 30 + [2] * 25 + [3] * 20], batch, axis=0))
    return q, k, v, sinks, segments


def _reference(q, k, v, sinks, segments, window):
    mask = causal_segment_mask(segments, q.shape[1], q.shape[0])
    return sink_attention(q, k, v, window_mask(mask, window, jnp.arange(q.shape[1])), sinks)


@pytest.mark.parametrize("window", [0, 7, 40])
def test_blockwise_with_sinks_and_window_equals_reference(window):
    q, k, v, sinks, segments = _inputs()

    def loss(fn):
        def f(q, k, v, sinks):
            out = fn(q, k, v, sinks)
            return jnp.sum(out * jnp.cos(out)), out
        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3), has_aux=True))

    ours = loss(lambda q, k, v, s: blockwise_attention(q, k, v, segments, block_q=16, block_k=16, sinks=s,
                                                       window=jnp.int32(window)))(q, k, v, sinks)
    want = loss(lambda q, k, v, s: _reference(q, k, v, s, segments, window))(q, k, v, sinks)
    np.testing.assert_allclose(ours[1], want[1], atol=1e-5, rtol=0)
    for name, got, expected in zip(("q", "k", "v", "sinks"), ours[0], want[0]):
        np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, float(jnp.abs(expected).max())), rtol=0,
                                   err_msg=name)


def test_sinks_and_window_change_the_output():
    """The comparison above is not vacuous: sinks and the window each change the result."""
    q, k, v, sinks, segments = _inputs()
    plain = _reference(q, k, v, None, segments, 0)
    assert float(jnp.abs(_reference(q, k, v, sinks, segments, 0) - plain).max()) > 0.05
    assert float(jnp.abs(_reference(q, k, v, None, segments, 7) - plain).max()) > 0.05
