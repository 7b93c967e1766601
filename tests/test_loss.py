"""The chunked cross-entropy equals optax's over materialised logits, in value and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssd_jax.training.loss import chunked_cross_entropy_sum


def _optax_sum(hidden, head, targets, weights):
    logits = jnp.einsum("btd,dv->btv", hidden, head, preferred_element_type=jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return jnp.sum(jnp.where(weights > 0, ce * weights, 0.0))


@pytest.mark.parametrize("chunk", [16, 37 * 3, 4096])  # several tiles with padding, one exact tile, one oversized
def test_chunked_cross_entropy_equals_optax(chunk):
    r = np.random.RandomState(0)
    hidden = jnp.asarray(r.randn(3, 37, 16), jnp.float32)
    head = jnp.asarray(r.randn(16, 50), jnp.float32)
    targets = jnp.asarray(r.randint(0, 50, (3, 37)), jnp.int32)
    weights = jnp.asarray(r.rand(3, 37) * (r.rand(3, 37) > 0.3), jnp.float32)  # fractional weights and masked tokens
    ours = lambda h, w: chunked_cross_entropy_sum(h, w, targets, weights, chunk=chunk)
    theirs = lambda h, w: _optax_sum(h, w, targets, weights)
    value, grads = jax.jit(jax.value_and_grad(ours, argnums=(0, 1)))(hidden, head)
    ref_value, ref_grads = jax.value_and_grad(theirs, argnums=(0, 1))(hidden, head)
    print(f"chunk {chunk}: loss {float(value):.6f} vs optax {float(ref_value):.6f}; max |grad difference|",
          [f"{float(jnp.max(jnp.abs(a - b))):.1e}" for a, b in zip(grads, ref_grads)])
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_masked_tokens_add_nothing():
    """A masked token's (huge) loss and gradient must not leak in, whatever its logits."""
    hidden = jnp.asarray(np.random.RandomState(1).randn(1, 4, 8) * 100, jnp.float32)
    head = jnp.asarray(np.random.RandomState(2).randn(8, 30), jnp.float32)
    targets = jnp.asarray([[0, 1, 2, 3]], jnp.int32)
    weights = jnp.asarray([[1.0, 0.0, 0.0, 0.0]], jnp.float32)
    full = jax.grad(lambda h: chunked_cross_entropy_sum(h, head, targets, weights, chunk=2))(hidden)
    first = jax.grad(lambda h: chunked_cross_entropy_sum(h[:, :1], head, targets[:, :1], weights[:, :1]))(hidden)
    np.testing.assert_array_equal(np.asarray(full[:, 1:]), 0.0)
    np.testing.assert_allclose(full, first, atol=1e-6)
