"""`load_model`: one entry point from any checkpoint reference to a ready model."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
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
from ssd_jax.workdir import cache_path, is_local, local_copy


@dataclasses.dataclass
class LoadedModel:
    """A model with everything needed to prompt it: tokenizer, chat template, end-of-sequence ids
    (all of them, resolved by `end_of_sequence_ids`), mesh."""

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
    remat: bool | str = False,
    attention: str = "auto",
) -> LoadedModel:
    """Loads `ref`: an HF directory, a `.gguf` file, an ssd-jax model directory (each local or
    `gs://`), or a built-in name (`smollm2-135m-instruct`). `dtype` is the compute dtype; parameters are stored in
    `param_dtype` (default: `dtype`) and placed on `mesh` (one device if none)."""
    from ssd_jax.checkpoints import builtin, tiny

    mesh = mesh or single_device_mesh()
    overrides = dict(dtype=dtype, param_dtype=param_dtype or dtype, remat=remat, attention=attention)
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
    if not is_local(ref) or os.path.isdir(ref):
        if ssd_checkpoint.is_model_dir(ref):
            with damaged():
                return _load_ssd(ref, overrides, mesh, rules)
        if epath.Path(ref).joinpath("config.json").is_file():
            with damaged():
                return _load_hf(ref, overrides, mesh, rules)
    raise InputError(
        f"cannot load model {ref!r}: expected an HF directory (config.json + *.safetensors), a .gguf "
        f"file, an ssd-jax model directory (with {ssd_checkpoint.MARKER}), or a built-in name "
        f"({', '.join(sorted([*builtin.BUILTIN_MODELS, tiny.NAME]))})"
    )


def local_model_files(ref: str, *, skip: tuple[str, ...] = ()) -> str:
    """A local directory with the files of model directory `ref`: `ref` itself when local, else
    a copy of each file (`ssd_jax.workdir.local_copy`). `skip` names top-level entries not to copy."""
    if is_local(ref):
        return ref
    root = epath.Path(ref)
    pending = [root]
    while pending:
        for entry in pending.pop().iterdir():
            if entry.parent == root and entry.name in skip:
                continue
            if entry.is_dir():
                pending.append(entry)
            else:
                local_copy(entry)
    return str(cache_path(ref))


def _load_hf(ref: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.text.chat import load_chat_template
    from ssd_jax.text.tokenizer import load_tokenizer

    directory = local_model_files(ref)  # safetensors are memory-mapped: they must be local files
    with open(os.path.join(directory, "config.json")) as f:
        hf_config = json.load(f)
    config = ModelConfig.from_hf(hf_config, **overrides)
    model = model_from_tensors(config, SafetensorsSource(directory), mesh, rules)
    tokenizer, chat_template = load_tokenizer(directory), load_chat_template(directory)
    eos = end_of_sequence_ids(_generation_config_eos(directory), config, tokenizer, chat_template)
    return LoadedModel(model, config, tokenizer, chat_template, eos, ref, mesh)


def _load_ssd(ref: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.text.chat import load_chat_template
    from ssd_jax.text.tokenizer import load_tokenizer

    config = ssd_checkpoint.read_config(ref, **overrides)
    model = ssd_checkpoint.load_params(ref, config, mesh, rules)  # Orbax reads gs:// itself
    directory = local_model_files(ref, skip=("params",))
    tokenizer, chat_template = load_tokenizer(directory), load_chat_template(directory)
    eos = end_of_sequence_ids(_generation_config_eos(directory), config, tokenizer, chat_template)
    return LoadedModel(model, config, tokenizer, chat_template, eos, ref, mesh)


def _load_gguf(path: str, ref: str, overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.checkpoints.gguf import read_gguf

    checkpoint = read_gguf(path)
    config = ModelConfig.from_hf(checkpoint.hf_config, **overrides)
    source = types.SimpleNamespace(names=lambda: checkpoint.tensor_names, get=checkpoint.get_tensor)
    model = model_from_tensors(config, source, mesh, rules)
    eos = end_of_sequence_ids(checkpoint.eos_token_ids, config, checkpoint.tokenizer, checkpoint.chat_template)
    return LoadedModel(model, config, checkpoint.tokenizer, checkpoint.chat_template, eos, ref, mesh)


def _load_tiny(overrides: dict, mesh, rules) -> LoadedModel:
    from ssd_jax.checkpoints import tiny

    config = ModelConfig.from_hf(tiny.tiny_hf_config(), **overrides)
    model = shard_model(Transformer(config, rngs=nnx.Rngs(0)), mesh, rules)
    tokenizer, chat_template = tiny.tiny_tokenizer(), tiny.tiny_chat_template()
    eos = end_of_sequence_ids((), config, tokenizer, chat_template)
    return LoadedModel(model, config, tokenizer, chat_template, eos, tiny.NAME, mesh)


def end_of_sequence_ids(declared: Sequence[int], config: ModelConfig, tokenizer: Any,
                        chat_template: Any) -> tuple[int, ...]:
    """Every id that ends generation, decided here for every checkpoint format: the checkpoint's
    own list (generation_config.json's, or GGUF metadata's by llama.cpp's rule), else config.json's
    eos_token_id, else the tokenizer's eos; plus the chat template's end-of-turn token when it is
    one token (an instruct model ends its turn with it)."""
    ids = list(declared) or list(config.eos_token_ids)
    if not ids and tokenizer.eos_id is not None:
        ids.append(tokenizer.eos_id)
    if chat_template is not None:
        end_of_turn = tokenizer.token_to_id(chat_template.end_of_turn_text)
        if end_of_turn is not None:
            ids.append(end_of_turn)
    return tuple(dict.fromkeys(int(i) for i in ids))


def _generation_config_eos(directory: str) -> tuple[int, ...]:
    """generation_config.json's eos_token_id (one id or a list), if the directory has one."""
    path = os.path.join(directory, "generation_config.json")
    if not os.path.isfile(path):
        return ()
    with open(path) as f:
        eos = json.load(f).get("eos_token_id")
    return () if eos is None else tuple(eos) if isinstance(eos, list) else (eos,)
