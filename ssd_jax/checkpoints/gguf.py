"""GGUF checkpoints (llama.cpp's format) read as HF-named float32 tensors, an HF config, tokenizer and template.

Tensors are dequantized lazily, one per `get_tensor` call, into HF layout ([out, in]). llama.cpp's
converter permutes the rows of the llama Q/K projections (and biases) for its rotary layout; that is
undone here, as transformers' GGUF loader does.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, ReaderTensor
from gguf.quants import dequantize

from ssd_jax.text.chat import ChatTemplate
from ssd_jax.text.tokenizer import HFTokenizer, byte_level_bpe_tokenizer


@dataclass(frozen=True)
class _Architecture:
    model_type: str
    hf_class: str
    permutes_qk: bool


_ARCHITECTURES = {
    "llama": _Architecture("llama", "LlamaForCausalLM", permutes_qk=True),
    "qwen3": _Architecture("qwen3", "Qwen3ForCausalLM", permutes_qk=False),
}

# `{architecture}.<key>` metadata -> HF config field.
_CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "context_length": "max_position_embeddings",
    "embedding_length": "hidden_size",
    "feed_forward_length": "intermediate_size",
    "block_count": "num_hidden_layers",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "rope.freq_base": "rope_theta",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
}

_GLOBAL_TENSORS = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_BLOCK_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_BLOCK_TENSOR = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")

# Token texts that end generation in llama.cpp besides the declared eos/eot/eom ids.
_END_OF_GENERATION_TEXTS = frozenset(
    {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"}
)
_CONTROL_TOKEN = 3


@dataclass
class GGUFCheckpoint:
    """A GGUF file opened for reading: `get_tensor(hf_name)` dequantizes one tensor on demand."""

    path: Path
    hf_config: dict[str, Any]
    tokenizer: HFTokenizer
    chat_template: ChatTemplate | None
    eos_token_ids: tuple[int, ...]
    _tensors: dict[str, ReaderTensor] = field(repr=False)
    _permutes_qk: bool = field(repr=False)

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(self._tensors)

    def get_tensor(self, name: str) -> np.ndarray:
        """The tensor HF calls `name`, as float32 in HF layout."""
        if name not in self._tensors:
            raise KeyError(f"{self.path.name} has no tensor {name!r}; tensor_names lists the ones it has.")
        tensor = self._tensors[name]
        values = np.array(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        projection = name.split(".")[-2]
        if self._permutes_qk and projection in ("q_proj", "k_proj"):
            heads = self.hf_config["num_attention_heads" if projection == "q_proj" else "num_key_value_heads"]
            values = _unpermute_rotary_rows(values, heads)
        return values


def read_gguf(path: str | Path) -> GGUFCheckpoint:
    """Open a GGUF checkpoint: its HF config, tensor names, tokenizer, chat template and eos ids."""
    path = Path(path)
    reader = GGUFReader(str(path))
    metadata = {name: value.contents() for name, value in reader.fields.items()}
    architecture = metadata.get("general.architecture")
    if architecture not in _ARCHITECTURES:
        raise NotImplementedError(
            f"{path.name}: GGUF architecture {architecture!r} is not supported (supported: {sorted(_ARCHITECTURES)})."
        )
    tensors = {_hf_tensor_name(tensor.name, path): tensor for tensor in reader.tensors}
    return GGUFCheckpoint(
        path=path,
        hf_config=_hf_config(metadata, architecture, tensors.keys(), path),
        tokenizer=_tokenizer(metadata, path),
        chat_template=_chat_template(metadata),
        eos_token_ids=_eos_token_ids(metadata),
        _tensors=tensors,
        _permutes_qk=_ARCHITECTURES[architecture].permutes_qk,
    )


def _hf_config(metadata: dict, architecture: str, hf_names: Collection[str], path: Path) -> dict[str, Any]:
    """An HF `config.json` dict (LlamaConfig / Qwen3Config fields) from `{architecture}.*` metadata."""
    spec = _ARCHITECTURES[architecture]
    key = lambda name: metadata.get(f"{architecture}.{name}")  # noqa: E731
    if key("rope.scaling.type") not in (None, "none"):
        raise NotImplementedError(f"{path.name}: rope scaling {key('rope.scaling.type')!r} is not supported.")
    config: dict[str, Any] = {hf: key(gguf) for gguf, hf in _CONFIG_KEYS.items() if key(gguf) is not None}
    missing = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"} - config.keys()
    if missing:
        raise ValueError(f"{path.name}: metadata lacks {architecture}.* keys for {sorted(missing)}.")
    config.setdefault("vocab_size", len(metadata["tokenizer.ggml.tokens"]))
    config.setdefault("num_key_value_heads", config["num_attention_heads"])
    config.setdefault("rope_theta", 10000.0)
    head_dim = key("attention.key_length") or key("rope.dimension_count")
    return {
        "architectures": [spec.hf_class],
        "model_type": spec.model_type,
        **config,
        "head_dim": head_dim or config["hidden_size"] // config["num_attention_heads"],
        "hidden_act": "silu",
        "attention_bias": "model.layers.0.self_attn.q_proj.bias" in hf_names,
        "rope_scaling": None,
        "tie_word_embeddings": "lm_head.weight" not in hf_names,
        "bos_token_id": metadata.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": metadata.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": metadata.get("tokenizer.ggml.padding_token_id"),
    }


def _hf_tensor_name(gguf_name: str, path: Path) -> str:
    stem, _, suffix = gguf_name.rpartition(".")
    if stem in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[stem]}.{suffix}"
    match = _BLOCK_TENSOR.fullmatch(gguf_name)
    if match and match.group(2) in _BLOCK_TENSORS:
        layer, part, suffix = match.groups()
        return f"model.layers.{layer}.{_BLOCK_TENSORS[part]}.{suffix}"
    if stem == "rope_freqs":
        raise NotImplementedError(f"{path.name}: per-frequency rope factors (llama3 rope scaling) are not supported.")
    raise ValueError(f"{path.name}: tensor {gguf_name!r} has no HF counterpart here.")


def _unpermute_rotary_rows(values: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's `permute`: rows of each head go from interleaved pairs back to two halves."""
    half = values.shape[0] // heads // 2
    return values.reshape(heads, half, 2, *values.shape[1:]).swapaxes(1, 2).reshape(values.shape)


def _tokenizer(metadata: dict, path: Path) -> HFTokenizer:
    model = metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise NotImplementedError(
            f"{path.name}: tokenizer.ggml.model={model!r} is not supported, only byte-level BPE ('gpt2'). "
            "Load the model's HF tokenizer.json or tokenizer.model instead."
        )
    tokens = metadata["tokenizer.ggml.tokens"]
    return byte_level_bpe_tokenizer(
        tokens=tokens,
        merges=metadata.get("tokenizer.ggml.merges", []),
        token_types=metadata.get("tokenizer.ggml.token_type", [1] * len(tokens)),
        pre_tokenizer=metadata.get("tokenizer.ggml.pre"),
        special_ids={
            "bos_token": metadata.get("tokenizer.ggml.bos_token_id"),
            "eos_token": metadata.get("tokenizer.ggml.eos_token_id"),
            "unk_token": metadata.get("tokenizer.ggml.unknown_token_id"),
            "pad_token": metadata.get("tokenizer.ggml.padding_token_id"),
        },
    )


def _chat_template(metadata: dict) -> ChatTemplate | None:
    template = metadata.get("tokenizer.chat_template")
    if template is None:
        return None
    tokens = metadata["tokenizer.ggml.tokens"]
    token_text = lambda key: tokens[metadata[key]] if key in metadata else ""  # noqa: E731
    return ChatTemplate(template, token_text("tokenizer.ggml.bos_token_id"), token_text("tokenizer.ggml.eos_token_id"))


def _eos_token_ids(metadata: dict) -> tuple[int, ...]:
    """Ids that end generation, as llama.cpp decides: eos/eot/eom ids, then known end-of-turn control tokens."""
    declared = [metadata.get(f"tokenizer.ggml.{name}_token_id") for name in ("eos", "eot", "eom")]
    tokens = metadata["tokenizer.ggml.tokens"]
    token_types = metadata.get("tokenizer.ggml.token_type", [])
    by_text = [
        index
        for index, (token, kind) in enumerate(zip(tokens, token_types, strict=False))
        if kind == _CONTROL_TOKEN and token in _END_OF_GENERATION_TEXTS
    ]
    return tuple(dict.fromkeys(token_id for token_id in [*declared, *by_text] if token_id is not None))
