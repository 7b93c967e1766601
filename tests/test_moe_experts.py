"""The grouped-matmul experts (`ragged_dot`, what TPUs and GPUs run) equal the dense experts
(what a CPU runs), forward and gradients, with biases, the clamped SwiGLU and a device's slice
of the experts (`first_expert`)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssd_jax.models.moe import clamped_swiglu, dense_experts, grouped_experts


@pytest.mark.parametrize("first_expert, held", [(0, 6), (2, 3)])
def test_grouped_experts_equal_dense_experts(first_expert, held):
    keys = jax.random.split(jax.random.key(0), 8)
    tokens, embed, width, num_experts, top_k = 19, 16, 8, 6, 2
    x = jax.random.normal(keys[0], (tokens, embed))
    experts = jax.vmap(lambda k: jax.random.choice(k, num_experts, (top_k,), replace=False))(
        jax.random.split(keys[1], tokens)).astype(jnp.int32)
    weights = jax.nn.softmax(jax.random.normal(keys[2], (tokens, top_k)), axis=-1)
    gate, up = (jax.random.normal(k, (held, embed, width)) for k in keys[3:5])
    down = jax.random.normal(keys[5], (held, width, embed))
    gate_bias, up_bias = (jax.random.normal(k, (held, width)) for k in keys[6:8])
    activation = functools.partial(clamped_swiglu, limit=3.0, alpha=1.702)

    def loss(fn):
        def f(x, weights, gate, up, down, gate_bias, up_bias):
            out = fn(x, experts, weights, gate, up, down, first_expert=first_expert, activation=activation,
                     gate_bias=gate_bias, up_bias=up_bias)
            return jnp.sum(jnp.sin(out)), out
        return jax.jit(jax.grad(f, argnums=tuple(range(7)), has_aux=True))

    args = (x, weights, gate, up, down, gate_bias, up_bias)
    (grads, out), (want_grads, want) = loss(grouped_experts)(*args), loss(dense_experts)(*args)
    assert float(jnp.abs(want).max()) > 0.1 and bool(jnp.any(want == 0)) == (held < num_experts)
    np.testing.assert_allclose(out, want, atol=1e-4, rtol=1e-5)
    for got, expected in zip(grads, want_grads):
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_grouped_experts_over_cache_replicas_equal_dense_experts():
    """The sampler's vmap over cache replicas (`under_replica_vmap`): each replica's tokens go
    through the experts one replica after another, the weights shared, not copied per replica."""
    from ssd_jax.models.moe import under_replica_vmap

    keys = jax.random.split(jax.random.key(1), 5)
    replicas, tokens, embed, width, num_experts, top_k = 3, 7, 16, 8, 4, 2
    x = jax.random.normal(keys[0], (replicas, tokens, embed))
    experts = jax.random.randint(keys[1], (replicas, tokens, top_k), 0, num_experts, jnp.int32)
    weights = jax.nn.softmax(jax.random.normal(keys[2], (replicas, tokens, top_k)), axis=-1)
    gate, up = (jax.random.normal(k, (num_experts, embed, width)) for k in keys[3:5])
    down = jnp.swapaxes(gate, 1, 2)

    def over_replicas(fn):
        return jax.vmap(lambda x, e, w: fn(x, e, w, gate, up, down))(x, experts, weights)

    with under_replica_vmap():
        got = jax.jit(lambda: over_replicas(grouped_experts))()
        jaxpr = str(jax.make_jaxpr(lambda: over_replicas(grouped_experts))())
    np.testing.assert_allclose(got, over_replicas(dense_experts), atol=1e-4, rtol=1e-5)
    assert f"[{replicas},{num_experts},{embed},{width}]" not in jaxpr.replace(" ", ""), "weights copied per replica"
