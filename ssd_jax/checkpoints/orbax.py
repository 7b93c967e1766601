"""ssd-jax's own model checkpoint: parameters (Orbax) + model config + tokenizer files.

Layout of a model directory:
    ssd_model.json   {"format": "ssd-jax-model", "version": 1, "hf_config": {...}, "param_dtype": ...}
    params/          the parameter pytree, written collectively by Orbax (sharded on every host)
    tokenizer.json, tokenizer_config.json, ...   so the model is self-contained
The trainer writes its final model this way; `load_model(path)` reads it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx

from ssd_jax.models.config import ModelConfig
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import single_device_mesh, state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, Rules

MARKER = "ssd_model.json"
FORMAT = "ssd-jax-model"


def _absolute(directory: str) -> str:
    """Orbax refuses relative paths; a local one is taken from the working directory."""
    return directory if "://" in directory else os.path.abspath(directory)


def is_model_dir(path: str) -> bool:
    return epath.Path(path).joinpath(MARKER).exists()


def save_model(
    model: Transformer, directory: str, *, tokenizer: Any = None, chat_template: Any = None
) -> str:
    """Writes `model` (and its tokenizer) as an ssd-jax model directory; collective on a pod."""
    directory = _absolute(directory)
    params = nnx.state(model, nnx.Param).to_pure_dict()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(epath.Path(directory) / "params", params, force=True)
        checkpointer.wait_until_finished()
    if jax.process_index() == 0:
        meta = {
            "format": FORMAT,
            "version": 1,
            "hf_config": model.config.to_hf(),
            "param_dtype": model.config.param_dtype,
        }
        epath.Path(directory).joinpath(MARKER).write_text(json.dumps(meta, indent=2))
        if tokenizer is not None:
            from ssd_jax.text.tokenizer import save_hf_tokenizer

            save_hf_tokenizer(tokenizer, directory, chat_template=chat_template)
    return directory


def read_config(directory: str, **overrides: Any) -> ModelConfig:
    meta = json.loads(epath.Path(directory).joinpath(MARKER).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{directory}/{MARKER} is not an ssd-jax model marker (format={meta.get('format')!r})")
    overrides.setdefault("param_dtype", meta["param_dtype"])
    return ModelConfig.from_hf(meta["hf_config"], **overrides)


def load_params(
    directory: str, config: ModelConfig, mesh: jax.sharding.Mesh | None = None, rules: Rules = DEFAULT_RULES
) -> Transformer:
    """Restores the parameters straight onto their shardings on `mesh`."""
    mesh = mesh or single_device_mesh()
    model = nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0)))
    state = nnx.state(model, nnx.Param)
    shardings = state_shardings(state, mesh, rules).to_pure_dict()
    shapes = state.to_pure_dict()
    dtype = jax.numpy.dtype(config.param_dtype)
    target = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, dtype, sharding=sh), shapes, shardings)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(epath.Path(_absolute(directory)) / "params", target)
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)
    return model
