"""HF checkpoints ⇄ ssd-jax models: build a sharded model from HF tensors, export one back."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
from flax import nnx
from safetensors.flax import save_file

from ssd_jax.checkpoints.hf_layout import TOP_TENSORS, block_tensors, interleave
from ssd_jax.checkpoints.mxfp4 import dequantizing
from ssd_jax.checkpoints.tensor_source import TensorSource
from ssd_jax.models.config import ModelConfig
from ssd_jax.models.transformer import Transformer, param_layers
from ssd_jax.parallel import HostShards, single_device_mesh
from ssd_jax.parallel.placement import state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules

_MAX_SHARD_BYTES = 2 * 1024**3


def abstract_model(config: ModelConfig) -> Transformer:
    """The model's structure with shapes only: nothing allocated."""
    return nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0)))


def model_from_tensors(
    config: ModelConfig, source: TensorSource, mesh: jax.sharding.Mesh | None = None, rules: Rules = DEFAULT_RULES
) -> Transformer:
    """Builds the model from HF-named tensors, reading one tensor at a time straight into this
    host's shards of each parameter on `mesh` (one device if none)."""
    mesh = mesh or single_device_mesh()
    source = dequantizing(source)
    model = abstract_model(config)
    state = nnx.state(model)
    shardings = state_shardings(state, mesh, rules)
    available = set(source.names())
    dtype = np.dtype(jax.numpy.dtype(config.param_dtype))

    def build(path: tuple, var: nnx.Variable, sharding) -> jax.Array:
        name = path[-1]
        stacked = path[0] == "blocks"
        mapping = (block_tensors(config) if stacked else TOP_TENSORS)[name]
        shards = HostShards(var.get_value().shape, dtype, sharding)
        for index, layer in _tensor_indices(config, name if stacked else None, mapping.per_expert):
            hf_name = mapping.hf_name.format(i=layer, e=index[-1] if index else None)
            if hf_name not in available:
                raise KeyError(f"the checkpoint has no tensor {hf_name!r}, which a {config.family} model needs")
            value = mapping.to_ours(source.get(hf_name), config)
            expected = var.get_value().shape[len(index):]
            if value.shape != tuple(expected):
                raise ValueError(
                    f"tensor {hf_name!r} has shape {source.get(hf_name).shape}, which does not fit "
                    f"{name} {tuple(expected)} of this config"
                )
            shards.write(value.astype(dtype), index or None)
        return shards.finish()

    flat_shardings = dict(nnx.to_flat_state(shardings))
    for path, var in nnx.to_flat_state(state):
        var.set_value(build(path, var, flat_shardings[path]))
    nnx.update(model, state)
    return model


def hf_tensors(model: Transformer) -> dict[str, np.ndarray]:
    """Every parameter as HF-named, HF-layout host arrays (gathered from all devices)."""
    config = model.config
    tensors: dict[str, np.ndarray] = {}
    halves: dict[str, dict[int, np.ndarray]] = {}  # gpt-oss's fused gate/up tensors, by half
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        value = np.asarray(jax.experimental.multihost_utils.process_allgather(var[...], tiled=True))
        if path[0] == "blocks":
            mapping = block_tensors(config)[path[-1]]
            for index, layer in _tensor_indices(config, path[-1], mapping.per_expert):
                name = mapping.hf_name.format(i=layer, e=index[-1])
                converted = np.ascontiguousarray(mapping.to_hf(value[index], config))
                if mapping.interleaved is None:
                    tensors[name] = converted
                else:
                    halves.setdefault(name, {})[mapping.interleaved] = converted
        else:
            mapping = TOP_TENSORS[path[-1]]
            tensors[mapping.hf_name] = np.ascontiguousarray(mapping.to_hf(value, config))
    tensors.update({name: interleave(parts) for name, parts in halves.items()})
    return tensors


def _tensor_indices(config: ModelConfig, block_param: str | None,
                    per_expert: bool) -> list[tuple[tuple[int, ...], int | None]]:
    """The leading indices of a parameter that are one HF tensor each, with that tensor's layer:
    `((), None)` for a top-level parameter, else `((row,), layer)` or `((row, expert), layer)`,
    `row` counting the layers that `block_param` stacks (`param_layers`)."""
    if block_param is None:
        return [((), None)]
    stacked = enumerate(param_layers(config, block_param))
    if per_expert:
        return [((row, e), layer) for row, layer in stacked for e in range(config.num_experts)]
    return [((row,), layer) for row, layer in stacked]


def export_hf(
    model: Transformer,
    out_dir: str,
    *,
    tokenizer: Any = None,
    chat_template: Any = None,
    extra_config: dict[str, Any] | None = None,
) -> str:
    """Writes `config.json`, safetensors (sharded with an index when large) and tokenizer files
    that `transformers` loads as the same model. Only process 0 writes."""
    tensors = hf_tensors(model)
    if jax.process_index() != 0:
        return out_dir
    os.makedirs(out_dir, exist_ok=True)
    hf_config = {**model.config.to_hf(), **(extra_config or {})}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
    _write_safetensors(tensors, out_dir)
    if tokenizer is not None:
        from ssd_jax.text.tokenizer import save_hf_tokenizer

        save_hf_tokenizer(tokenizer, out_dir, chat_template=chat_template)
    return out_dir


def _write_safetensors(tensors: dict[str, np.ndarray], out_dir: str) -> None:
    groups: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, value in tensors.items():
        if size and size + value.nbytes > _MAX_SHARD_BYTES:
            groups.append({})
            size = 0
        groups[-1][name] = value
        size += value.nbytes
    if len(groups) == 1:
        _save(groups[0], os.path.join(out_dir, "model.safetensors"))
        return
    weight_map = {}
    for n, group in enumerate(groups, 1):
        file = f"model-{n:05d}-of-{len(groups):05d}.safetensors"
        _save(group, os.path.join(out_dir, file))
        weight_map.update({name: file for name in group})
    index = {"metadata": {"total_size": sum(v.nbytes for v in tensors.values())}, "weight_map": weight_map}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


def _save(tensors: dict[str, np.ndarray], path: str) -> None:
    """Saves through the flax backend, which (unlike numpy's) writes bfloat16."""
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        save_file({k: jax.numpy.asarray(v) for k, v in tensors.items()}, path, metadata={"format": "pt"})
