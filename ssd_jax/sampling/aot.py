"""The sampler's programs as compile targets: jitted functions with abstract, sharded arguments.

`sampler_compile_targets` lets `launch/compile.py` compile the continuous-batching sampler's
prefill chunk and decode step for a real topology (e.g. a TPU pod slice described on a CPU host)
and read their memory figures, without weights or devices. The page pool is the sampler's: its
`kv_cache_pages`, or by default room for every slot's sample of `max_prompt_tokens +
max_new_tokens` tokens; the decode step reads page tables as wide as such a sample, the prefill
chunk page tables as wide as such a prompt.

Attention is what the engine runs on the mesh's platform: on a TPU topology the Pallas kernel
(`kernels/ragged_paged_attention`, block sizes tuned for the chip compiled for, or the gather
path where it cannot serve the shapes), elsewhere the gather path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.models.config import ModelConfig
from ssd_jax.models.kv_cache import PagedKVCache
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import state_shardings
from ssd_jax.sampling.engine import (
    SlotInputs, cache_replicas, cache_sharding, jitted_programs, replica_sharding,
)
from ssd_jax.sampling.pages import default_pool_pages, prefix_pages, sample_pages
from ssd_jax.sampling.scheduler import table_width


def sampler_compile_targets(model_config: ModelConfig, *, mesh: jax.sharding.Mesh, dtype: str, batch_size: int,
                            max_prompt_tokens: int, max_new_tokens: int, page_size: int = 16,
                            prefill_chunk: int = 256, kv_cache_pages: int = 0) -> dict[str, tuple]:
    """{"prefill": (fn, args), "decode": (fn, args)}: `fn.lower(*args).compile()` compiles the
    sampler's prefill chunk and decode step on `mesh` for `batch_size` slots in `dtype`, with
    the `Sampler`'s `page_size`, `prefill_chunk` and `kv_cache_pages` (0: its default pool)."""
    config = model_config.replace(dtype=dtype, param_dtype=dtype)
    replicas = cache_replicas(mesh)
    if batch_size % replicas:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the mesh's data × fsdp × expert size "
                         f"({replicas})")
    slots = batch_size // replicas
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0))))
    shardings = state_shardings(abstract, mesh)
    params = jax.tree.map(lambda var, s: var.replace(jax.ShapeDtypeStruct(var.shape, var.dtype, sharding=s)),
                          abstract, shardings, is_leaf=lambda x: isinstance(x, nnx.Variable))
    total = max_prompt_tokens + max_new_tokens
    largest = sample_pages(max_prompt_tokens, max_new_tokens, page_size)
    num_pages = (kv_cache_pages or default_pool_pages(slots, largest, total, page_size)) + 1
    pages = cache_sharding(config, mesh, num_pages, page_size)
    rows = replica_sharding(mesh)
    leaves, treedef = jax.tree.flatten(shardings)
    decode, prefill, _, _ = jitted_programs(graphdef, treedef, tuple(leaves), rows, pages, config,
                                            False, mesh.devices.flat[0].platform == "tpu")

    def struct(shape, dtype_, sharding=rows):
        return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype_), sharding=sharding)

    shape = (replicas, num_pages, page_size, 2 * config.num_kv_heads, config.head_dim)
    cache = PagedKVCache(tuple(struct(shape, dtype, pages) for _ in range(config.num_layers)))
    slot = (replicas, slots)
    inputs = SlotInputs(struct(slot, jnp.int32), struct(slot, jnp.int32), struct(slot, jnp.float32),
                        struct(slot, jnp.int32), struct(slot, jnp.float32), struct((*slot, 2), jnp.uint32),
                        struct(slot, jnp.int32), struct(slot, jnp.int32), struct(slot, jnp.float32))
    seed = struct((), jnp.uint32, NamedSharding(mesh, PartitionSpec()))
    decode_width = table_width(-(-(total - 1) // page_size))  # the last step's kv_len is total - 1
    decode_args = (params, None, cache, inputs, struct((*slot, decode_width), jnp.int32), seed)
    prefill_args = (params, None, cache, struct((replicas, prefill_chunk), jnp.int32), struct((replicas,), jnp.int32),
                    struct((replicas,), jnp.int32),
                    struct((replicas, table_width(prefix_pages(max_prompt_tokens, page_size))), jnp.int32))
    return {"prefill": (prefill, prefill_args), "decode": (decode, decode_args)}
