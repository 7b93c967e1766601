"""The compiled prefill and decode programs of one sampler, placed on a device mesh.

Shardings are explicit at the `jit` boundary: parameters by their logical axes (tensor
parallel over heads / mlp / vocab on `model`), every per-row array over the batch axes
(`data` × `fsdp`), the KV cache over batch and KV heads (replicated on `model` where the KV
heads do not divide it). The cache is created by `prefill` and donated to `decode`, which
updates it in place. Each program compiles once per (batch size, prompt bucket). On CPU the
sampler slices the layer weights out of their stacked arrays once, when it is built, and keeps
them (a second copy of the block weights for the sampler's lifetime) for prefill and decode: a
slice inside the decode loop would copy every weight at every step, and one per decode call
costs ~6 ms per step at batch 32. Finished rows are dropped from a batch as it decodes (`SamplingPrograms`).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.models.kv_cache import CACHE_AXES, KVCache
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import batch_shards, state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules, logical_to_spec
from ssd_jax.sampling import loop
from ssd_jax.sampling.batching import HostBatch

CHECK_EVERY = 32  # Decode steps between checks for finished rows to drop (see SamplingPrograms).


@functools.lru_cache(maxsize=8)
def _jitted(graphdef: nnx.GraphDef, param_treedef, param_leaves: tuple, rows: NamedSharding,
            cache_sharding: NamedSharding, steps_per_call: int, sliced_layers: int):
    """The jitted (prefill, decode, select, slice_layers) programs; shared by every sampler of the
    same model and shardings, so samplers differing only in seed, stop ids or stop strings reuse
    compiled programs. Each compiles once per batch shape. With `sliced_layers` (the layer
    count; 0 = none) prefill and decode take the layers' weights pre-sliced by `slice_layers`."""
    param_shardings = jax.tree.unflatten(param_treedef, param_leaves)
    layer_shardings = _layer_shardings(param_shardings["blocks"], sliced_layers) if sliced_layers else None
    replicated = NamedSharding(rows.mesh, PartitionSpec())
    cache_shardings = KVCache(cache_sharding, cache_sharding)
    inputs = loop.DecodeInputs(*[rows] * len(loop.DecodeInputs._fields))
    state = loop.DecodeState(replicated, rows, rows, loop.DecodeOutputs(*[rows] * len(loop.DecodeOutputs._fields)))

    mesh = rows.mesh.abstract_mesh  # in context while tracing: mixture-of-experts layers shard_map over it

    def prefill(params, layer_params, tokens, positions, key_mask, inputs, max_new_tokens):
        with jax.sharding.use_abstract_mesh(mesh):
            cache = loop.prefill(nnx.merge(graphdef, params), tokens, positions, key_mask, layer_params)
        return cache, loop.initial_state(inputs, max_new_tokens)

    def decode(params, layer_params, cache, key_mask, inputs, state, seed, eos_ids, stop_ids):
        model = nnx.merge(graphdef, params)
        with jax.sharding.use_abstract_mesh(mesh):
            return loop.decode(model, cache, key_mask, inputs, state, seed, eos_ids, stop_ids, steps_per_call,
                               layer_params)

    prefill = jax.jit(prefill, in_shardings=(param_shardings, layer_shardings, rows, rows, rows, inputs),
                      out_shardings=(cache_shardings, state), static_argnums=6)
    decode = jax.jit(
        decode,
        in_shardings=(param_shardings, layer_shardings, cache_shardings, rows, inputs, state, replicated,
                      replicated, replicated),
        out_shardings=(state, cache_shardings),
        donate_argnums=(2, 5),
    )
    select = jax.jit(loop.select_rows, in_shardings=(replicated, cache_shardings, rows, inputs, state),
                     out_shardings=(cache_shardings, rows, inputs, state))
    slice_layers = jax.jit(lambda params: nnx.merge(graphdef, params).layer_params(),
                           in_shardings=(param_shardings,), out_shardings=layer_shardings)
    return prefill, decode, select, slice_layers


class SamplingPrograms:
    """`prefill` and `decode` for `model` on `mesh`, for batches of `batch_size` rows.

    Decoding a batch goes on until its longest row is done, and most rows finish long before
    (SmolLM2 on the offline problems: median 110 of at most 256 tokens). So every
    `CHECK_EVERY` steps the host looks at which rows are done and, once at most half the rows
    are live, moves the live ones into a batch half as large (or smaller), dropping the finished
    rows' cache: the step cost falls with the batch. Sizes halve down to the mesh's data × fsdp
    size; each size compiles its own decode program once. A row's tokens do not depend on the
    batch it is decoded in (see `keys`).
    """

    def __init__(self, model: Transformer, mesh: jax.sharding.Mesh, batch_size: int, max_new_tokens: int,
                 rules: Rules = DEFAULT_RULES):
        batch_devices = batch_shards(mesh)
        if batch_size % batch_devices:
            raise ValueError(
                f"batch_size {batch_size} must be a multiple of the mesh's data × fsdp × expert size ({batch_devices})"
            )
        graphdef, state = nnx.split(model)
        param_shardings = state_shardings(state, mesh, rules)
        self.params = jax.device_put(state, param_shardings)
        config = model.config
        cache_shape = (batch_size, config.num_kv_heads, 1, config.head_dim)
        cache_sharding = NamedSharding(mesh, logical_to_spec(CACHE_AXES, cache_shape, mesh, rules))
        rows = NamedSharding(mesh, logical_to_spec(("batch",), (batch_size,), mesh, rules))
        self._rows, self._replicated = rows, NamedSharding(mesh, PartitionSpec())
        self.max_new_tokens = max_new_tokens
        self.batch_sizes = _halvings(batch_size, batch_devices)
        steps_per_call = CHECK_EVERY if len(self.batch_sizes) > 1 else max_new_tokens
        leaves, treedef = jax.tree.flatten(param_shardings)
        on_cpu = mesh.devices.flat[0].platform == "cpu"
        sliced_layers = config.num_layers if on_cpu else 0  # see the module docstring
        self._prefill, self._decode, self._select, slice_layers = _jitted(
            graphdef, treedef, tuple(leaves), rows, cache_sharding, steps_per_call, sliced_layers
        )
        self.layer_params = slice_layers(self.params) if sliced_layers else None

    def prefill(self, batch: HostBatch) -> tuple[KVCache, loop.DecodeState]:
        """The cache after the batch's prompts (all but their last token) and the initial decode state."""
        host = (batch.prefill_tokens, batch.prefill_positions, batch.key_mask, batch.inputs)
        return self._prefill(self.params, self.layer_params, *self._on_rows(host), self.max_new_tokens)

    def decode(self, cache: KVCache, state: loop.DecodeState, batch: HostBatch, seed: int,
               eos_ids: np.ndarray, stop_ids: np.ndarray) -> loop.DecodeOutputs:
        """Decodes one prefilled batch to the end (consuming `cache`); returns NumPy outputs."""
        key_mask, inputs = self._on_rows((batch.key_mask, batch.inputs))
        scalars = jax.device_put((np.uint32(seed), eos_ids, stop_ids), self._replicated)
        rows_in_batch = len(batch.inputs.budget)
        results = loop.nothing_drawn(rows_in_batch, self.max_new_tokens)
        held = np.arange(rows_in_batch)  # the batch row each current row holds; -1: filler
        while True:
            state, cache = self._decode(self.params, self.layer_params, cache, key_mask, inputs, state, *scalars)
            done = np.asarray(jax.device_get(state.done))
            if done.all() or int(state.step) >= self.max_new_tokens:
                return _collect(results, held, state.outputs)
            size = min(s for s in self.batch_sizes if s >= np.count_nonzero(~done))
            if size < len(held):
                results = _collect(results, held, state.outputs)
                keep = np.concatenate([np.flatnonzero(~done), np.flatnonzero(done)])[:size].astype(np.int32)
                held = np.where(np.arange(size) < np.count_nonzero(~done), held[keep], -1)
                rows = jax.device_put(keep, self._replicated)
                cache, key_mask, inputs, state = self._select(rows, cache, key_mask, inputs, state)

    def _on_rows(self, host):
        """Host arrays → arrays on the (process-local) mesh, rows split over the batch axes.

        Explicit, because a multi-process JAX run refuses NumPy inputs to sharded programs."""
        return jax.device_put(host, self._rows)

    def run(self, batch: HostBatch, seed: int, eos_ids: np.ndarray, stop_ids: np.ndarray) -> loop.DecodeOutputs:
        """Prefills and decodes one batch."""
        return self.decode(*self.prefill(batch), batch, seed, eos_ids, stop_ids)


def _layer_shardings(block_shardings, num_layers: int) -> tuple[dict[str, NamedSharding], ...]:
    """Each layer's sharding: its stacked weight's, less the leading (unsharded) `layers` axis."""
    one = {name: NamedSharding(s.mesh, PartitionSpec(*s.spec[1:])) for name, s in block_shardings.items()}
    return (one,) * num_layers


def _halvings(batch_size: int, multiple_of: int) -> tuple[int, ...]:
    """batch_size, batch_size / 2, ... while the result stays a whole multiple of `multiple_of`."""
    sizes = [batch_size]
    while sizes[-1] % 2 == 0 and (sizes[-1] // 2) % multiple_of == 0:
        sizes.append(sizes[-1] // 2)
    return tuple(sizes)


def _collect(results: loop.DecodeOutputs, held: np.ndarray, outputs: loop.DecodeOutputs) -> loop.DecodeOutputs:
    """`results` with the current rows' outputs written into the batch rows they hold."""
    outputs = jax.device_get(outputs)
    real = held >= 0
    merged = []
    for whole, part in zip(results, outputs):
        whole = np.array(whole)
        whole[held[real]] = np.asarray(part)[real]
        merged.append(whole)
    return loop.DecodeOutputs(*merged)
