"""Expert parallelism: the experts of a mixture-of-experts layer split over the `expert` mesh axis.

With a mesh in context (`jax.sharding.use_abstract_mesh`), the grouped expert matmuls run under
`shard_map`: tokens split over the batch axes (`data`, `fsdp`, `expert`), expert weights split
over `expert` (whole experts) and over `model` (each expert's hidden width). Each device gathers
the tokens of its `expert` group (all-gather), runs only its own experts on the assignments
routed to them, and the partial outputs are summed back onto the tokens' devices (a
reduce-scatter over `expert`, a sum over `model`). Per device the expert compute is its share of
tokens × top_k; FSDP-sharded expert weights are gathered by XLA before the call, as any weight.
Without a mesh (or on one device) the experts run as they are and XLA places them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

TOKEN_AXES = ("data", "fsdp", "expert")
EXPERT_AXIS = "expert"
MODEL_AXIS = "model"


def _axis(mesh, name: str, size: int) -> str | None:
    """`name` if the mesh has it with more than one device and it divides `size`."""
    n = mesh.shape.get(name, 1)
    return name if n > 1 and size % n == 0 else None


def run_experts(local_experts: Callable, x: jax.Array, experts: jax.Array, weights: jax.Array,
                expert_weights: dict[str, jax.Array]) -> jax.Array:
    """`local_experts(x, experts, weights, first_expert=..., **expert_weights)` over the mesh.

    x `[N, embed]`, experts / weights `[N, k]`; every array in `expert_weights` is expert-major
    (`[E, ...]`) and names its hidden-width axis by its key: `down` `[E, mlp, embed]`, any other
    `[E, embed, mlp]` or `[E, mlp]` (a bias).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return local_experts(x, experts, weights, first_expert=0, **expert_weights)
    num_experts, width = expert_weights["down"].shape[:2]
    expert_axis = _axis(mesh, EXPERT_AXIS, num_experts)
    if mesh.shape.get(EXPERT_AXIS, 1) > 1 and expert_axis is None:
        raise ValueError(f"{num_experts} experts do not split over the mesh's expert axis "
                         f"({mesh.shape[EXPERT_AXIS]} devices); choose an expert axis that divides them")
    model_axis = _axis(mesh, MODEL_AXIS, width)
    token_axes = tuple(a for a in TOKEN_AXES if mesh.shape.get(a, 1) > 1)
    shards = math.prod(mesh.shape[a] for a in token_axes)
    num_tokens = x.shape[0]
    pad = -num_tokens % shards
    if pad:  # padded tokens route to expert 0 with weight 0 and are cut off again below
        x, experts, weights = (jnp.pad(a, ((0, pad), (0, 0))) for a in (x, experts, weights))

    def spec(name: str, value: jax.Array) -> P:
        if name == "down":
            return P(expert_axis, model_axis, None)
        return P(expert_axis, *([None] * (value.ndim - 2)), model_axis)

    rows = P(token_axes or None, None)

    def local(x, experts, weights, expert_weights):
        if expert_axis:
            x, experts, weights = (jax.lax.all_gather(a, expert_axis, axis=0, tiled=True) for a in (x, experts, weights))
            first = jax.lax.axis_index(expert_axis) * (num_experts // mesh.shape[expert_axis])
        else:
            first = 0
        out = local_experts(x, experts, weights, first_expert=first, **expert_weights)
        if model_axis:
            out = jax.lax.psum(out, model_axis)
        if expert_axis:
            out = jax.lax.psum_scatter(out, expert_axis, scatter_dimension=0, tiled=True)
        return out

    specs = {name: spec(name, value) for name, value in expert_weights.items()}
    out = jax.shard_map(local, mesh=mesh, in_specs=(rows, rows, rows, specs), out_specs=rows)(
        x, experts, weights, expert_weights)
    return out[:num_tokens]
