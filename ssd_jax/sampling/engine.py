"""The continuous-batching sampler's device programs over a paged KV cache, placed on a mesh.

Three programs, all over `R` cache replicas (the mesh's data × fsdp size; each replica holds its
own pages and slots, so no step moves KV data between devices of different replicas):

* `decode`: one token for each of the `S` slots of every replica, each slot at its own
  position, reading its own pages (`[R, S, P]` page tables, `P` bounded by the live pages);
  returns each slot's chosen token and log-probs. Compiles once per page-table width.
* `prefill`: one chunk of `C` prompt tokens per replica into its pages (no logits). Compiles
  once per (chunk size, page-table width).

On TPU both attend with the Pallas kernel, which reads only each slot's live pages whatever the
table's width, so where it attends every layer the sampler passes one width per run
(`reads_only_live_pages`) and each program compiles once; the gather path (elsewhere, and for
layers the kernel does not serve) reads the whole table, so there the sampler bounds the width
by the live pages at every step.
* `copy_pages`: copy-on-write, page `src[r, i]` → `dst[r, i]`.

Weights and the cache are held in the compute dtype (`ModelConfig.dtype`), cast once here. On
CPU the layer weights are also sliced out of their stacked arrays once (a slice inside the
program copies every weight at every step on that backend); elsewhere XLA fuses the slice.
The cache is donated to every program and updated in place.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.kernels.paged import unsupported_reason
from ssd_jax.models import moe
from ssd_jax.models.config import ModelConfig
from ssd_jax.models.kv_cache import PAGED_AXES, PagedKVCache, paged_attention, pallas_paged_attention
from ssd_jax.models.transformer import Transformer, layer_rows
from ssd_jax.parallel import batch_shards, state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules, logical_to_spec
from ssd_jax.sampling.choose import Choice, choose_tokens
from ssd_jax.sampling.keys import sample_keys, token_uniforms


class SlotInputs(NamedTuple):
    """Per-slot (`[R, S]`) inputs of one decode step."""

    token: jax.Array  # int32: the token fed at this step (the prompt's last, then each drawn one)
    kv_len: jax.Array  # int32: tokens in the slot's cache after this step (its position + 1); idle: 1
    temperature: jax.Array  # float32 (idle slots: 0, greedy)
    top_k: jax.Array  # int32, 0 = off
    top_p: jax.Array  # float32, 1.0 = off
    id_words: jax.Array  # uint32 [R, S, 2]: hash of the prompt id (keys.prompt_id_words)
    sample_index: jax.Array  # int32
    drawn: jax.Array  # int32: tokens drawn so far, the position in the sample's key stream
    adaptive: jax.Array  # float32: adaptive-temperature strength (sampling/adaptive.py), 0 = off


def idle_slots(replicas: int, slots: int) -> SlotInputs:
    """NumPy inputs of all-idle slots: greedy, at position 0 of the null page."""
    zeros = np.zeros((replicas, slots), np.int32)
    return SlotInputs(zeros.copy(), zeros + 1, np.zeros((replicas, slots), np.float32), zeros.copy(),
                      np.ones((replicas, slots), np.float32), np.zeros((replicas, slots, 2), np.uint32),
                      zeros.copy(), zeros.copy(), np.zeros((replicas, slots), np.float32))


def cast_floats(state, dtype):
    """`state` with every floating array in `dtype` (the sampler's weights, once, in compute dtype)."""
    dtype = jnp.dtype(dtype)
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, state)


def cache_replicas(mesh: jax.sharding.Mesh) -> int:
    return batch_shards(mesh)


def cache_sharding(config: ModelConfig, mesh: jax.sharding.Mesh, num_pages: int, page_size: int,
                   rules: Rules = DEFAULT_RULES) -> NamedSharding:
    """Each layer's `[R, pages, page, 2K, D]` pages: replicas over the batch axes, heads over `model`.

    Keys and values of a KV head are adjacent (heads 2k, 2k + 1), so a split of the 2K heads
    into `model` contiguous blocks keeps whole KV heads together, as the projections split them."""
    shape = (cache_replicas(mesh), num_pages, page_size, config.num_kv_heads, config.head_dim)  # split by KV heads
    return NamedSharding(mesh, logical_to_spec(("batch", *PAGED_AXES), shape, mesh, rules))


def replica_sharding(mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES) -> NamedSharding:
    """Per-replica arrays (leading axis `R`) split over the batch axes."""
    return NamedSharding(mesh, logical_to_spec(("batch",), (cache_replicas(mesh),), mesh, rules))


def _layer_shardings(block_shardings, config: ModelConfig) -> tuple[dict[str, NamedSharding], ...]:
    """Each layer's sharding: its stacked weight's, less the leading (unsharded) `layers` axis;
    a layer holds the feed-forward weights of its own kind only (`Transformer.layer_params`)."""
    one = {name: NamedSharding(s.mesh, PartitionSpec(*s.spec[1:])) for name, s in block_shardings.items()}
    return tuple({name: one[name] for name in rows} for rows in layer_rows(config, one))


def kernel_attends_every_layer(config: ModelConfig, mesh: jax.sharding.Mesh) -> bool:
    """Whether the TPU kernel attends every layer on `mesh`, so that a wider page table costs
    nothing; layers with sinks or a sliding window, and shapes the kernel cannot take
    (`kernels.paged.unsupported_reason`), read their tables through the gather path."""
    if config.attention_sinks or any(config.layer_windows):
        return False
    q = jax.ShapeDtypeStruct((1, 1, config.num_heads, config.head_dim), jnp.dtype(config.dtype))
    pages = jax.ShapeDtypeStruct((1, 1, 2 * config.num_kv_heads, config.head_dim), jnp.dtype(config.dtype))
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
        return unsupported_reason(q, pages) is None


@functools.lru_cache(maxsize=8)
def jitted_programs(graphdef: nnx.GraphDef, param_treedef, param_leaves: tuple, rows: NamedSharding,
                    pages: NamedSharding, config: ModelConfig, sliced: bool, kernel: bool):
    """The jitted (decode, prefill, copy_pages, slice_layers) of one model on one mesh; shared by
    every sampler with the same model and shardings (so a new seed or stop list never recompiles).
    With `sliced` the programs take the layer weights pre-sliced by `slice_layers`. `kernel`:
    attend with the TPU Pallas kernel instead of the gather path."""
    param_shardings = jax.tree.unflatten(param_treedef, param_leaves)
    layer_shardings = _layer_shardings(param_shardings["blocks"], config) if sliced else None
    replicated = NamedSharding(rows.mesh, PartitionSpec())
    attention_fn = pallas_paged_attention if kernel else paged_attention
    mesh = rows.mesh.abstract_mesh  # in context while tracing: mixture-of-experts layers shard_map over it

    def decode(params, layer_params, cache, inputs, page_table, seed):
        with jax.sharding.use_abstract_mesh(mesh), moe.under_replica_vmap():
            return _decode(params, layer_params, cache, inputs, page_table, seed)

    def prefill(params, layer_params, cache, tokens, kv_len, q_len, page_table):
        with jax.sharding.use_abstract_mesh(mesh), moe.under_replica_vmap():
            return _prefill(params, layer_params, cache, tokens, kv_len, q_len, page_table)

    def _decode(params, layer_params, cache, inputs, page_table, seed):
        model = nnx.merge(graphdef, params)

        def one_replica(pages, token, kv_len, table):
            logits, out = model.forward_paged(token[:, None], kv_len, jnp.ones_like(kv_len), PagedKVCache(pages),
                                              table, layer_params, attention_fn)
            return logits[:, 0], out.pages

        logits, new_pages = jax.vmap(one_replica)(cache.pages, inputs.token, inputs.kv_len, page_table)
        replicas, slots = inputs.token.shape

        def flat(x):
            return x.reshape(replicas * slots, *x.shape[2:])

        uniforms = token_uniforms(sample_keys(seed, flat(inputs.id_words), flat(inputs.sample_index)),
                                  flat(inputs.drawn))
        choice = choose_tokens(flat(logits), uniforms, flat(inputs.temperature), flat(inputs.top_k),
                               flat(inputs.top_p), flat(inputs.adaptive))
        return Choice(*(x.reshape(replicas, slots) for x in choice)), PagedKVCache(new_pages)

    def _prefill(params, layer_params, cache, tokens, kv_len, q_len, page_table):
        model = nnx.merge(graphdef, params)

        def one_replica(pages, chunk, kv, q, table):
            _, out = model.forward_paged(chunk[None], kv[None], q[None], PagedKVCache(pages), table[None],
                                         layer_params, attention_fn, logits=False)
            return out.pages

        return PagedKVCache(jax.vmap(one_replica)(cache.pages, tokens, kv_len, q_len, page_table))

    def copy_pages(cache, src, dst):
        copy = jax.vmap(lambda layer, s, d: layer.at[d].set(layer[s]))
        return PagedKVCache(tuple(copy(layer, src, dst) for layer in cache.pages))

    caches = PagedKVCache((pages,) * config.num_layers)
    inputs = SlotInputs(*[rows] * len(SlotInputs._fields))
    decode = jax.jit(decode, in_shardings=(param_shardings, layer_shardings, caches, inputs, rows, replicated),
                     out_shardings=(Choice(rows, rows, rows), caches), donate_argnums=2)
    prefill = jax.jit(prefill, in_shardings=(param_shardings, layer_shardings, caches, rows, rows, rows, rows),
                      out_shardings=caches, donate_argnums=2)
    copy_pages = jax.jit(copy_pages, in_shardings=(caches, rows, rows), out_shardings=caches, donate_argnums=0)
    slice_layers = jax.jit(lambda params: nnx.merge(graphdef, params).layer_params(),
                           in_shardings=(param_shardings,), out_shardings=layer_shardings)
    return decode, prefill, copy_pages, slice_layers


class PagedEngine:
    """A model's weights and paged cache on a mesh, with the programs that step them.

    Holds `num_pages` pages (the null page included) per cache replica; `replicas` is the mesh's
    data × fsdp size. Every method takes and returns host (NumPy) arrays with a leading replica
    axis, and counts its calls (`prefill_chunks`, `decode_steps`) for tests and benchmarks.
    """

    def __init__(self, model: Transformer, mesh: jax.sharding.Mesh, *, num_pages: int, page_size: int,
                 rules: Rules = DEFAULT_RULES):
        config = model.config
        graphdef, state = nnx.split(model)
        state = cast_floats(state, config.dtype)
        param_shardings = state_shardings(state, mesh, rules)
        self.params = jax.device_put(state, param_shardings)
        platform = mesh.devices.flat[0].platform
        self.replicas, self.num_pages, self.page_size = cache_replicas(mesh), num_pages, page_size
        self._rows = replica_sharding(mesh, rules)
        self._replicated = NamedSharding(mesh, PartitionSpec())
        pages = cache_sharding(config, mesh, num_pages, page_size, rules)
        leaves, treedef = jax.tree.flatten(param_shardings)
        sliced = platform == "cpu"
        self._decode, self._prefill, self._copy, slice_layers = jitted_programs(
            graphdef, treedef, tuple(leaves), self._rows, pages, config, sliced, platform == "tpu")
        self.layer_params = slice_layers(self.params) if sliced else None
        self.reads_only_live_pages = platform == "tpu" and kernel_attends_every_layer(config, mesh)
        shape = (self.replicas, num_pages, page_size, 2 * config.num_kv_heads, config.head_dim)
        zeros = jax.jit(lambda: PagedKVCache(tuple(jnp.zeros(shape, config.dtype) for _ in range(config.num_layers))),
                        out_shardings=PagedKVCache((pages,) * config.num_layers))
        self.cache = zeros()
        self.prefill_chunks = self.decode_steps = 0

    def decode(self, inputs: SlotInputs, page_table: np.ndarray, seed: int) -> Choice:
        """One decode step of every slot (idle slots run too, on the null page)."""
        self.decode_steps += 1
        choice, self.cache = self._decode(self.params, self.layer_params, self.cache,
                                          jax.device_put(inputs, self._rows), jax.device_put(page_table, self._rows),
                                          jax.device_put(np.uint32(seed), self._replicated))
        return jax.device_get(choice)

    def prefill(self, tokens: np.ndarray, kv_len: np.ndarray, q_len: np.ndarray, page_table: np.ndarray) -> None:
        """Writes one chunk `tokens [R, C]` per replica (the last `q_len` of `kv_len` tokens)."""
        self.prefill_chunks += 1
        args = jax.device_put((tokens, kv_len, q_len, page_table), self._rows)
        self.cache = self._prefill(self.params, self.layer_params, self.cache, *args)

    def copy_pages(self, src: np.ndarray, dst: np.ndarray) -> None:
        self.cache = self._copy(self.cache, *jax.device_put((src, dst), self._rows))
