"""Every attention implementation computes what the reference attention computes.

The reference (`attention.grouped_query_attention` over a dense causal + segment mask) is
itself checked against HF transformers in test_model_vs_hf.py; here blockwise attention and
splash attention (Pallas interpret mode) must equal it, forward and gradients, in float32.
"""

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssd_jax.kernels.splash import splash_attention
from ssd_jax.models import attention, self_attention
from ssd_jax.models.blockwise_attention import blockwise_attention
from ssd_jax.parallel import make_mesh

TOLERANCE = 1e-5


def _inputs(batch, length, heads, kv_heads, head_dim, packed, seed=0):
    r = np.random.RandomState(seed)
    q = jnp.asarray(r.randn(batch, length, heads, head_dim), jnp.float32)
    k, v = (jnp.asarray(r.randn(batch, kv_heads, length, head_dim), jnp.float32) for _ in range(2))
    segments = None
    if packed:  # 1-4 examples per row, then padding (segment 0)
        segments = np.sort(r.randint(1, 5, (batch, length)), axis=1)
        segments[:, length - length // 7:] = 0
        segments = jnp.asarray(segments, jnp.int32)
    cotangent = jnp.asarray(r.randn(batch, length, heads, head_dim), jnp.float32)
    return q, k, v, segments, cotangent


def _value_and_grads(fn, q, k, v, cotangent):
    return jax.jit(jax.value_and_grad(lambda q, k, v: jnp.sum(fn(q, k, v) * cotangent), argnums=(0, 1, 2)))(q, k, v)


def _reference(segments, q, k, v):
    return attention.grouped_query_attention(q, k, v, attention.causal_segment_mask(segments, q.shape[1], q.shape[0]))


def _assert_same(fn, q, k, v, segments, cotangent, tolerance=TOLERANCE):
    out, ref = jax.jit(fn)(q, k, v), _reference(segments, q, k, v)
    (_, grads), (_, ref_grads) = (_value_and_grads(f, q, k, v, cotangent) for f in (fn, functools.partial(_reference, segments)))
    errors = [float(jnp.max(jnp.abs(out - ref)))] + [float(jnp.max(jnp.abs(a - b))) for a, b in zip(grads, ref_grads)]
    print("max |difference| (output, dq, dk, dv):", ["%.1e" % e for e in errors])
    assert max(errors) < tolerance, errors


@pytest.mark.parametrize(
    "length, heads, kv_heads, packed, block_q, block_k",
    [
        (64, 4, 4, False, 16, 16),   # causal, multi-head, whole blocks
        (37, 4, 2, True, 8, 16),     # packed segments, GQA, length not a multiple of the block
        (100, 6, 1, True, 32, 16),   # MQA, block_q > block_k
        (100, 6, 3, True, 16, 32),   # GQA, block_k > block_q
        (5, 2, 1, False, 512, 512),  # shorter than one block
    ],
)
def test_blockwise_equals_reference(length, heads, kv_heads, packed, block_q, block_k):
    q, k, v, segments, cotangent = _inputs(2, length, heads, kv_heads, 16, packed)
    fn = lambda q, k, v: blockwise_attention(q, k, v, segments, block_q=block_q, block_k=block_k)
    _assert_same(fn, q, k, v, segments, cotangent)


def test_blockwise_bfloat16_stays_close():
    q, k, v, segments, _ = _inputs(2, 96, 4, 2, 16, True)
    bf16 = [x.astype(jnp.bfloat16) for x in (q, k, v)]
    out = blockwise_attention(*bf16, segments, block_q=32, block_k=32)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(_reference(segments, *bf16), np.float32), atol=2e-2)


def test_splash_interpret_equals_reference():
    q, k, v, segments, cotangent = _inputs(1, 256, 4, 2, 64, packed=True)
    fn = lambda q, k, v: splash_attention(q, k, v, segments, interpret=True)
    _assert_same(fn, q, k, v, segments, cotangent)


def test_splash_under_shard_map_equals_reference():
    """Rows over data × fsdp, heads over model: each device runs the kernel on its own shard."""
    q, k, v, segments, _ = _inputs(2, 128, 4, 2, 64, packed=True)
    mesh = make_mesh(2, 1, 2, devices=jax.devices()[:4])
    with jax.set_mesh(mesh):
        out = jax.jit(lambda q, k, v, s: splash_attention(q, k, v, s, interpret=True))(q, k, v, segments)
    np.testing.assert_allclose(np.asarray(out), np.asarray(_reference(segments, q, k, v)), atol=TOLERANCE)


def test_auto_and_fallbacks_on_cpu(caplog):
    q, k, _, segments, _ = _inputs(1, 8, 2, 1, 8, packed=True)
    long_q = jax.ShapeDtypeStruct((1, self_attention.REFERENCE_MAX_LENGTH + 1, 2, 8), jnp.float32)
    choose = self_attention.choose_implementation
    assert choose("auto", q, k, segments) == "reference"
    assert choose("auto", long_q, k, segments) == "blockwise"
    with caplog.at_level(logging.WARNING):
        assert choose("splash", q, k, segments) == "blockwise"
        assert choose("cudnn", q, k, segments) == "blockwise"
    assert "splash attention needs a TPU" in caplog.text and "cuDNN attention needs an NVIDIA GPU" in caplog.text
    with pytest.raises(ValueError, match="flash"):
        choose("flash", q, k, segments)
