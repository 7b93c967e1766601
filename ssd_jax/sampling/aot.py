"""The sampler's programs as ahead-of-time compile targets: abstract arguments, no weights.

`launch/compile.py` lowers and compiles these for a TPU topology to read their memory per chip
(see `ssd_jax.compiled_fit`). They are the exact jitted prefill and decode programs the sampler
runs (`programs.SamplingPrograms`), with their shardings, for one batch of `batch_size` rows of
`max_prompt_tokens`-token prompts and `max_new_tokens` new tokens.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.models.config import ModelConfig
from ssd_jax.models.kv_cache import CACHE_AXES, KVCache
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import logical_to_spec, state_shardings
from ssd_jax.sampling import loop, programs

MAX_STOP_IDS = 8  # length of the eos / stop id arrays the programs are compiled for


def sampler_compile_targets(
    model_config: ModelConfig, *, mesh: jax.sharding.Mesh, dtype: str, batch_size: int,
    max_prompt_tokens: int, max_new_tokens: int,
) -> dict[str, tuple[Any, tuple]]:
    """`{"prefill": (jitted, args), "decode": (jitted, args)}`: `jitted.lower(*args).compile()`
    compiles the program; every array argument is a `jax.ShapeDtypeStruct` with its sharding.

    `dtype` is the compute dtype (activations and KV cache); parameters are stored in
    `model_config.param_dtype`, as `load_model` stores them for the sampler.
    """
    config = model_config.replace(dtype=dtype)
    model = nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    param_shardings = state_shardings(state, mesh)
    params = jax.tree.map(lambda s, v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s), param_shardings, state)
    cache_shape = (batch_size, config.num_kv_heads, max_prompt_tokens - 1 + max_new_tokens, config.head_dim)
    cache_sharding = NamedSharding(mesh, logical_to_spec(CACHE_AXES, cache_shape, mesh))
    rows = NamedSharding(mesh, logical_to_spec(("batch",), (batch_size,), mesh))
    replicated = NamedSharding(mesh, PartitionSpec())
    leaves, treedef = jax.tree.flatten(param_shardings)
    prefill, decode, _, _ = programs._jitted(graphdef, treedef, tuple(leaves), rows, cache_sharding,
                                             programs.CHECK_EVERY, 0)

    def array(shape, dt, sharding=rows):
        return jax.ShapeDtypeStruct(shape, jnp.dtype(dt), sharding=sharding)

    prompt, slots = (batch_size, max_prompt_tokens - 1), (batch_size, cache_shape[2])
    per_row = (batch_size,)
    inputs = loop.DecodeInputs(
        last_token=array(per_row, "int32"), last_position=array(per_row, "int32"), budget=array(per_row, "int32"),
        temperature=array(per_row, "float32"), top_k=array(per_row, "int32"), top_p=array(per_row, "float32"),
        id_words=array((batch_size, 2), "uint32"), sample_index=array(per_row, "int32"),
    )
    generated = (batch_size, max_new_tokens)
    state_args = loop.DecodeState(
        step=array((), "int32", replicated), token=array(per_row, "int32"), done=array(per_row, "bool"),
        outputs=loop.DecodeOutputs(
            tokens=array(generated, "int32"), model_logprobs=array(generated, "float32"),
            sampling_logprobs=array(generated, "float32"), num_tokens=array(per_row, "int32"),
            finish=array(per_row, "int32"),
        ),
    )
    layer = array(cache_shape, dtype, cache_sharding)
    cache = KVCache((layer,) * config.num_layers, (layer,) * config.num_layers)
    key_mask = array(slots, "bool")
    stop_ids = array((MAX_STOP_IDS,), "int32", replicated)
    return {
        "prefill": (prefill, (params, None, array(prompt, "int32"), array(prompt, "int32"), key_mask, inputs,
                              max_new_tokens)),
        "decode": (decode, (params, None, cache, key_mask, inputs, state_args, array((), "uint32", replicated),
                            stop_ids, stop_ids)),
    }
