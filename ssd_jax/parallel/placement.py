"""Placing model state and host arrays onto a mesh."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding

from ssd_jax.parallel.rules import DEFAULT_RULES, Rules, logical_to_spec


def sharding_for(axes: Sequence[str | None], shape: Sequence[int], mesh, rules: Rules = DEFAULT_RULES) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(axes, shape, mesh, rules))


def state_shardings(state: nnx.State, mesh, rules: Rules = DEFAULT_RULES) -> nnx.State:
    """A `NamedSharding` for every variable in `state`, from its `axes` metadata (replicated if none)."""

    def one(var):
        axes = var.get_metadata().get("axes")
        if axes is None:
            return NamedSharding(mesh, jax.sharding.PartitionSpec())
        return sharding_for(axes, var.get_value().shape, mesh, rules)

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def shard_model(model: nnx.Module, mesh, rules: Rules = DEFAULT_RULES) -> nnx.Module:
    """Moves every parameter of `model` onto `mesh` by its logical axes (in place; returns it)."""
    state = nnx.state(model)
    shardings = state_shardings(state, mesh, rules)
    values = jax.tree.map(lambda v: v[...], state, is_leaf=lambda x: isinstance(x, nnx.Variable))
    nnx.update(model, jax.device_put(values, shardings))
    return model


class HostShards:
    """This host's distinct shards of one global array, filled one leading-axis slice at a time.

    Checkpoint loaders read one tensor (e.g. one layer's weight), `write` it, and drop it: no
    host ever holds more than its own shards plus the tensor being read.
    """

    def __init__(self, shape: Sequence[int], dtype, sharding: NamedSharding):
        self.shape, self.sharding = tuple(shape), sharding
        self._device_index = {
            d: _index_key(i, self.shape) for d, i in sharding.addressable_devices_indices_map(self.shape).items()
        }
        self._buffers = {
            key: np.zeros(tuple(len(range(*k)) for k in key), dtype) for key in set(self._device_index.values())
        }

    def write(self, value: np.ndarray, leading_index: int | tuple[int, ...] | None = None) -> None:
        """Writes the whole array, or (`leading_index` given) its slice at that index of the
        leading axis (a tuple: of the leading axes, e.g. layer and expert)."""
        index = () if leading_index is None else (
            leading_index if isinstance(leading_index, tuple) else (leading_index,))
        for key, buffer in self._buffers.items():
            leads = [range(*k) for k in key[: len(index)]]
            if all(i in lead for i, lead in zip(index, leads)):
                at = tuple(lead.index(i) for i, lead in zip(index, leads))
                buffer[at] = value[tuple(slice(*k) for k in key[len(index):])]

    def finish(self) -> jax.Array:
        shards = [jax.device_put(self._buffers[key], d) for d, key in self._device_index.items()]
        return jax.make_array_from_single_device_arrays(self.shape, self.sharding, shards)


def _index_key(index: tuple[slice, ...], shape: Sequence[int]) -> tuple:
    return tuple(s.indices(n) for s, n in zip(index, shape))
