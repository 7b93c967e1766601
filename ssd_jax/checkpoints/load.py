"""`load_model`: one entry point from any checkpoint reference to a ready model."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ssd_jax.checkpoints import orbax as ssd_checkpoint
from ssd_jax.checkpoints.hf import model_from_tensors
from ssd_jax.checkpoints.tensor_source import SafetensorsSource
from ssd_jax.errors import InputError
from ssd_jax.models.config import ModelConfig
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import shard_model, single_device_mesh
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules
from ssd_jax.reading import reading


@dataclasses.dataclass
class LoadedModel:
    """A model with everything needed to prompt it: tokenizer, chat template, stop ids, mesh."""

    model: Transformer
    config: ModelConfig
    tokenizer: Any
    chat_template: Any
    eos_token_ids: tuple[int, ...]
    ref: str
    mesh: jax.sharding.Mesh

    def logits(self, token_ids: Any) -> np.ndarray:
        """int32 `[B, L]` (no padding) → float32 logits `[B, L, V]`."""
        tokens = jnp.asarray(token_ids, dtype=jnp.int32)
        return np.asarray(_forward(self.model, tokens))

    def export_hf(self, out_dir: str) -> str:
        """Writes an HF directory (config, safetensors, tokenizer) that `transformers` loads."""
        from ssd_jax.checkpoints.hf import export_hf

        return export_hf(self.model, out_dir, tokenizer=self.tokenizer, chat_template=self.chat_template)

    def save(self, directory: str) -> str:
        """Writes an ssd-jax model directory (Orbax parameters + config + tokenizer)."""
        return ssd_checkpoint.save_model(
            self.model, directory, tokenizer=self.tokenizer, chat_template=self.chat_template
        )


@nnx.jit
def _forward(model: Transformer, tokens: jax.Array) -> jax.Array:
    return model(tokens)


def load_model(
    ref: str,
    *,
    dtype: str = "float32",
    param_dtype: str | None = None,
    mesh: jax.sharding.Mesh | None = None,
    rules: Rules = DEFAULT_RULES,
    remat: bool = False,
) -> LoadedModel:
    """Loads `ref`: an HF directory, a `.gguf` file, an ssd-jax model directory, or a built-in
    name (`smollm2-135m-instruct`). `dtype` is the compute dtype; parameters are stored in
    `param_dtype` (default: `dtype`) and placed on `mesh` (one device if none)."""
    from ssd_jax.checkpoints import builtin, tiny

    mesh = mesh or single_device_mesh()
    overrides = dict(dtype=dtype, param_dtype=param_dtype or dtype, remat=remat)
    if ref == tiny.NAME:
        return _load_tiny(overrides, mesh, rules)
    if ref in builtin.BUILTIN_MODELS:
        return _load_gguf(str(builtin.resolve_builtin(ref)), ref, overrides, mesh, rules)
    # A file that does not parse fails in many ways (safetensors', TensorStore's and Orbax's own
    # exception types among them): any failure while reading it names the file.
    damaged = functools.partial(reading, "model", ref, "the checkpoint is damaged or not a supported model; "
                                "copy or convert it again", errors=(Exception,))
    if ref.endswith(".gguf"):
        if not os.path.isfile(ref):
            raise InputError(f"GGUF file {ref} does not exist")
        with damaged():
            return _load_gguf(ref, ref, overrides, mesh, rules)
    if "://" in ref or os.path.isdir(ref):
        if ssd_checkpoint.is_model_dir(ref):
            with damaged():
                return _load_ssd(ref, overrides, mesh, rules)
        if os.path.isfile(os.path.join(ref, "config.json")):
            with damaged():
                return _load_hf(ref, overrides, mesh, rules)
    raise InputError(
        f"cannot load model {ref!r}: expected an HF directory (config.json + *.safetensors), a .gguf "
        f"file, an ssd-jax model directory (with {ssd_checkpoint.MARKER}), or a built-in name "
        f"({', '.join(sorted([*builtin.BUILTIN_MODELS, tiny.NAME]))})"
    )


def _load_hf(directory: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.text.chat import load_chat_template
    from ssd_jax.text.tokenizer import load_tokenizer

    with open(os.path.join(directory, "config.json")) as f:
        hf_config = json.load(f)
    config = ModelConfig.from_hf(hf_config, **overrides)
    model = model_from_tensors(config, SafetensorsSource(directory), mesh, rules)
    tokenizer = load_tokenizer(directory)
    return LoadedModel(
        model, config, tokenizer, load_chat_template(directory),
        _eos_ids(directory, config, tokenizer), directory, mesh,
    )


def _load_ssd(directory: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.text.chat import load_chat_template
    from ssd_jax.text.tokenizer import load_tokenizer

    config = ssd_checkpoint.read_config(directory, **overrides)
    model = ssd_checkpoint.load_params(directory, config, mesh, rules)
    tokenizer = load_tokenizer(directory)
    return LoadedModel(
        model, config, tokenizer, load_chat_template(directory),
        _eos_ids(directory, config, tokenizer), directory, mesh,
    )


def _load_gguf(path: str, ref: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.checkpoints.gguf import read_gguf

    checkpoint = read_gguf(path)
    config = ModelConfig.from_hf(checkpoint.hf_config, **overrides)
    source = types.SimpleNamespace(names=lambda: checkpoint.tensor_names, get=checkpoint.get_tensor)
    model = model_from_tensors(config, source, mesh, rules)
    eos = tuple(checkpoint.eos_token_ids) or config.eos_token_ids
    return LoadedModel(model, config, checkpoint.tokenizer, checkpoint.chat_template, eos, ref, mesh)


def _load_tiny(overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.checkpoints import tiny

    config = ModelConfig.from_hf(tiny.tiny_hf_config(), **overrides)
    model = shard_model(Transformer(config, rngs=nnx.Rngs(0)), mesh, rules)
    return LoadedModel(
        model, config, tiny.tiny_tokenizer(), tiny.tiny_chat_template(), config.eos_token_ids, tiny.NAME, mesh
    )


def _eos_ids(directory: str, config: ModelConfig, tokenizer: Any) -> tuple[int, ...]:
    """End-of-sequence ids: generation_config.json's, else config.json's, else the tokenizer's."""
    path = os.path.join(directory, "generation_config.json")
    if os.path.isfile(path):
        with open(path) as f:
            eos = json.load(f).get("eos_token_id")
        if eos is not None:
            return tuple(eos) if isinstance(eos, list) else (eos,)
    if config.eos_token_ids:
        return config.eos_token_ids
    return () if tokenizer.eos_id is None else (tokenizer.eos_id,)
