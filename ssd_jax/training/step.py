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


def micro_batch_loss(graphdef: nnx.GraphDef, params: Params, micro: Batch, total_weight: jax.Array,
                     micro_batches: int = 1) -> tuple[jax.Array, dict[str, jax.Array]]:
    """This micro-batch's share of the global objective, and its parts: its CE sum over the
    global weight, plus for a mixture of experts the router's load-balancing loss weighted by
    `router_aux_loss_coef` (as transformers adds it), averaged over the micro-batches.

    The cross-entropy is chunked over tokens (`training.loss`): no row's logits are ever whole."""
    model = nnx.merge(graphdef, params)
    hidden, router_loss = model.hidden_states_and_router_loss(micro["inputs"], micro["positions"], micro["segment_ids"])
    ce = chunked_cross_entropy_sum(hidden, model.output_head(), micro["targets"], micro["weights"]) / total_weight
    router_loss = router_loss / micro_batches
    return ce + model.config.router_aux_loss_coef * router_loss, {"loss": ce, "router_aux_loss": router_loss}


def loss_and_grads(graphdef: nnx.GraphDef, params: Params, batch: Batch, grad_sharding: Any = None):
    """Mean masked CE over `batch` (`[accumulation, rows, L]` arrays) and the objective's gradient."""
    parts, grads = losses_and_grads(graphdef, params, batch, grad_sharding)
    return parts["loss"], grads


def losses_and_grads(graphdef: nnx.GraphDef, params: Params, batch: Batch, grad_sharding: Any = None):
    """Mean masked CE over `batch` (`[accumulation, rows, L]` arrays), the mean router
    load-balancing loss (0 for a dense model), and the objective's gradient, accumulated over
    the leading axis one micro-batch at a time: `({"loss", "router_aux_loss"}, grads)`."""
    total_weight = jnp.maximum(jnp.sum(batch["weights"]), 1.0)
    micro_batches = batch["inputs"].shape[0]
    grad_fn = jax.grad(micro_batch_loss, argnums=1, has_aux=True)
    if micro_batches == 1:  # no accumulation: skip the zero-filled gradient buffers
        grads, parts = grad_fn(graphdef, params, jax.tree.map(lambda x: x[0], batch), total_weight)
        return parts, grads

    def accumulate(grad_sum, micro):
        grads, parts = grad_fn(graphdef, params, micro, total_weight, micro_batches)
        return jax.tree.map(jnp.add, grad_sum, grads), parts

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    if grad_sharding is not None:
        zeros = jax.lax.with_sharding_constraint(zeros, grad_sharding)
    grads, parts = jax.lax.scan(accumulate, zeros, batch)
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
    return jax.tree.map(jnp.sum, parts), grads


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
            losses, grads = losses_and_grads(graphdef, params, batch, param_shardings)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics = {
            **losses,
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
