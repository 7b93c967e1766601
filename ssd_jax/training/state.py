"""The training state as plain pytrees (parameter dict, optax state) and its shardings.

Parameters live as a pure dict of float32 (`param_dtype`) arrays — the master weights — split
from the NNX model once; the model's graph definition turns them back into a module inside
the jitted step. Shardings come from each parameter's logical axes (`ssd_jax.parallel`);
Adam's moments take their parameter's sharding (so FSDP shards them too), the rest is
replicated.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.parallel import logical_to_spec, state_shardings

BATCH_AXES = (None, "batch", "length")  # [accumulation, rows, length]


def split_params(model: nnx.Module) -> tuple[nnx.GraphDef, dict[str, Any]]:
    """The model's graph definition and its parameters as a pure dict."""
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params.to_pure_dict()


def param_shardings(model: nnx.Module, mesh: jax.sharding.Mesh) -> dict[str, Any]:
    """A `NamedSharding` per parameter, from its logical axes."""
    return state_shardings(nnx.state(model, nnx.Param), mesh).to_pure_dict()


def opt_state_shardings(optimizer: optax.GradientTransformation, params: Any, shardings: Any, mesh) -> Any:
    """Shardings for `optimizer.init(params)`: parameter-shaped leaves like their parameter."""
    abstract = jax.eval_shape(optimizer.init, params)
    replicated = NamedSharding(mesh, PartitionSpec())
    return optax.tree_map_params(
        optimizer, lambda _, sharding: sharding, abstract, shardings,
        transform_non_params=lambda _: replicated,
    )


def init_opt_state(optimizer: optax.GradientTransformation, params: Any, shardings: Any) -> Any:
    return jax.jit(optimizer.init, out_shardings=shardings)(params)


def batch_shardings(batch_shapes: dict[str, tuple[int, ...]], mesh) -> dict[str, NamedSharding]:
    """Rows of every batch array split over the mesh's data and fsdp axes."""
    return {
        name: NamedSharding(mesh, logical_to_spec(BATCH_AXES, shape, mesh)) for name, shape in batch_shapes.items()
    }


def put_batch(batch: dict[str, np.ndarray], shardings: dict[str, NamedSharding]) -> dict[str, jax.Array]:
    """This process's rows of a batch → global arrays on the mesh (one or many processes)."""
    return {
        name: jax.make_array_from_process_local_data(shardings[name], value) for name, value in batch.items()
    }
