"""The loss and the jitted training step (gradient accumulation, clipping, AdamW update).

Loss convention: the mean next-token cross-entropy over all masked (response) tokens of the
whole global batch — every trained token weighs the same, however the tokens are spread over
rows, packed examples, devices or accumulation steps. Each micro-batch contributes
`sum(ce · weight) / total_weight(global batch)`, so the accumulated gradient is exactly the
gradient of that global mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.training.loss import chunked_cross_entropy_sum

Params = dict[str, Any]
Batch = dict[str, jax.Array]


def micro_batch_loss(graphdef: nnx.GraphDef, params: Params, micro: Batch, total_weight: jax.Array) -> jax.Array:
    """This micro-batch's share of the global mean loss: its CE sum over the global weight.

    The cross-entropy is chunked over tokens (`training.loss`): no row's logits are ever whole."""
    model = nnx.merge(graphdef, params)
    hidden = model.hidden_states(micro["inputs"], micro["positions"], micro["segment_ids"])
    return chunked_cross_entropy_sum(hidden, model.output_head(), micro["targets"], micro["weights"]) / total_weight


def loss_and_grads(graphdef: nnx.GraphDef, params: Params, batch: Batch, grad_sharding: Any = None):
    """Mean masked CE over `batch` (`[accumulation, rows, L]` arrays) and its gradient,
    accumulated over the leading axis one micro-batch at a time."""
    total_weight = jnp.maximum(jnp.sum(batch["weights"]), 1.0)
    grad_fn = jax.value_and_grad(micro_batch_loss, argnums=1)
    if batch["inputs"].shape[0] == 1:  # no accumulation: skip the zero-filled gradient buffers
        return grad_fn(graphdef, params, jax.tree.map(lambda x: x[0], batch), total_weight)

    def accumulate(grad_sum, micro):
        loss, grads = grad_fn(graphdef, params, micro, total_weight)
        return jax.tree.map(jnp.add, grad_sum, grads), loss

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    if grad_sharding is not None:
        zeros = jax.lax.with_sharding_constraint(zeros, grad_sharding)
    grads, losses = jax.lax.scan(accumulate, zeros, batch)
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
    return jnp.sum(losses), grads


def make_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    param_shardings: Any,
    opt_shardings: Any,
    batch_shardings: Any,
) -> Callable[[Params, Any, Batch], tuple[Params, Any, dict[str, jax.Array]]]:
    """`step(params, opt_state, batch) -> (params, opt_state, metrics)`, jitted with explicit
    shardings; `params` and `opt_state` are donated (updated in place)."""

    mesh = jax.tree.leaves(param_shardings)[0].mesh

    def step(params, opt_state, batch):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):  # for the attention kernel's shard_map
            loss, grads = loss_and_grads(graphdef, params, batch, param_shardings)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics = {
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "masked_tokens": jnp.sum(batch["weights"]),
            "tokens": jnp.sum(batch["segment_ids"] > 0),
        }
        return optax.apply_updates(params, updates), opt_state, metrics

    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(
        step,
        in_shardings=(param_shardings, opt_shardings, batch_shardings),
        out_shardings=(param_shardings, opt_shardings, replicated),
        donate_argnums=(0, 1),
    )
