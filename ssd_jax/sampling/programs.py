"""The compiled prefill and decode programs of one sampler, placed on a device mesh.

Shardings are explicit at the `jit` boundary: parameters by their logical axes (tensor
parallel over heads / mlp / vocab on `model`), every per-row array over the batch axes
(`data` × `fsdp`), the KV cache over batch and KV heads (replicated on `model` where the KV
heads do not divide it). The cache is created by `prefill` and donated to `decode`, which
updates it in place. Each program compiles once per (batch size, prompt bucket). On CPU the
decode loop slices the layer weights out of their stacked arrays once, before the loop.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.models.kv_cache import CACHE_AXES, KVCache
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules, logical_to_spec
from ssd_jax.sampling import loop
from ssd_jax.sampling.batching import HostBatch


@functools.lru_cache(maxsize=8)
def _jitted(graphdef: nnx.GraphDef, param_treedef, param_leaves: tuple, rows: NamedSharding,
            cache_sharding: NamedSharding, max_new_tokens: int, hoist_weights: bool):
    """The jitted (prefill, decode) pair; shared by every sampler of the same model and shapes,
    so samplers differing only in seed, stop ids or stop strings reuse compiled programs."""
    param_shardings = jax.tree.unflatten(param_treedef, param_leaves)
    replicated = NamedSharding(rows.mesh, PartitionSpec())
    cache_shardings = KVCache(cache_sharding, cache_sharding)
    decode_inputs = loop.DecodeInputs(*[rows] * len(loop.DecodeInputs._fields))
    decode_outputs = loop.DecodeOutputs(*[rows] * len(loop.DecodeOutputs._fields))

    def prefill(params, tokens, positions, key_mask):
        return loop.prefill(nnx.merge(graphdef, params), tokens, positions, key_mask)

    def decode(params, cache, key_mask, inputs, seed, eos_ids, stop_ids):
        model = nnx.merge(graphdef, params)
        return loop.decode(model, cache, key_mask, inputs, seed, eos_ids, stop_ids, max_new_tokens, hoist_weights)

    prefill = jax.jit(prefill, in_shardings=(param_shardings, rows, rows, rows), out_shardings=cache_shardings)
    decode = jax.jit(
        decode,
        in_shardings=(param_shardings, cache_shardings, rows, decode_inputs, replicated, replicated, replicated),
        out_shardings=(decode_outputs, cache_shardings),
        donate_argnums=(1,),
    )
    return prefill, decode


class SamplingPrograms:
    """`prefill` and `decode` for `model` on `mesh`, for batches of `batch_size` rows."""

    def __init__(self, model: Transformer, mesh: jax.sharding.Mesh, batch_size: int, max_new_tokens: int,
                 rules: Rules = DEFAULT_RULES):
        batch_devices = mesh.shape["data"] * mesh.shape["fsdp"]
        if batch_size % batch_devices:
            raise ValueError(
                f"batch_size {batch_size} must be a multiple of the mesh's data × fsdp size ({batch_devices})"
            )
        graphdef, state = nnx.split(model)
        param_shardings = state_shardings(state, mesh, rules)
        self.params = jax.device_put(state, param_shardings)
        config = model.config
        cache_shape = (batch_size, config.num_kv_heads, 1, config.head_dim)
        cache_sharding = NamedSharding(mesh, logical_to_spec(CACHE_AXES, cache_shape, mesh, rules))
        rows = NamedSharding(mesh, logical_to_spec(("batch",), (batch_size,), mesh, rules))
        self._rows, self._replicated = rows, NamedSharding(mesh, PartitionSpec())
        leaves, treedef = jax.tree.flatten(param_shardings)
        hoist_weights = mesh.devices.flat[0].platform == "cpu"  # see loop.decode
        self._prefill, self._decode = _jitted(
            graphdef, treedef, tuple(leaves), rows, cache_sharding, max_new_tokens, hoist_weights
        )

    def prefill(self, batch: HostBatch) -> KVCache:
        """The cache after the batch's prompts (all but their last token), on the mesh."""
        host = (batch.prefill_tokens, batch.prefill_positions, batch.key_mask)
        return self._prefill(self.params, *self._on_rows(host))

    def decode(self, cache: KVCache, batch: HostBatch, seed: int, eos_ids: np.ndarray,
               stop_ids: np.ndarray) -> loop.DecodeOutputs:
        """Decodes one prefilled batch (consuming `cache`); returns NumPy outputs."""
        key_mask, inputs = self._on_rows((batch.key_mask, batch.inputs))
        scalars = jax.device_put((np.uint32(seed), eos_ids, stop_ids), self._replicated)
        outputs, _ = self._decode(self.params, cache, key_mask, inputs, *scalars)
        return loop.DecodeOutputs(*jax.device_get(tuple(outputs)))

    def _on_rows(self, host):
        """Host arrays → arrays on the (process-local) mesh, rows split over the batch axes.

        Explicit, because a multi-process JAX run refuses NumPy inputs to sharded programs."""
        return jax.device_put(host, self._rows)

    def run(self, batch: HostBatch, seed: int, eos_ids: np.ndarray, stop_ids: np.ndarray) -> loop.DecodeOutputs:
        """Prefills and decodes one batch."""
        return self.decode(self.prefill(batch), batch, seed, eos_ids, stop_ids)
