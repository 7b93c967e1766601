"""How ssd-jax parameters correspond to HF checkpoint tensors (names and layouts)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ssd_jax.models.config import ModelConfig

Convert = Callable[[np.ndarray, ModelConfig], np.ndarray]


@dataclasses.dataclass(frozen=True)
class TensorMapping:
    """One parameter: its HF name (with `{i}` for the layer), and conversions both ways."""

    hf_name: str
    to_ours: Convert
    to_hf: Convert
    per_expert: bool = False  # one HF tensor per expert (`{e}` in the name), stacked on our expert axis
    interleaved: int | None = None  # ours is every other column of the HF tensor, from this one (0 or 1)


def _same(w, c):
    return w


def _transpose(w, c):
    return w.T


def _in_heads(heads: str) -> TensorMapping:
    """HF `[heads*head_dim, embed]` ⇄ ours `[embed, heads, head_dim]`."""
    return TensorMapping(
        hf_name="",
        to_ours=lambda w, c: w.T.reshape(c.hidden_size, getattr(c, heads), c.head_dim),
        to_hf=lambda w, c: w.reshape(c.hidden_size, -1).T,
    )


def _with_name(mapping: TensorMapping, hf_name: str) -> TensorMapping:
    return dataclasses.replace(mapping, hf_name=hf_name)


_LAYER = "model.layers.{i}."
BLOCK_TENSORS: dict[str, TensorMapping] = {
    "attn_norm": TensorMapping(_LAYER + "input_layernorm.weight", _same, _same),
    "q_proj": _with_name(_in_heads("num_heads"), _LAYER + "self_attn.q_proj.weight"),
    "k_proj": _with_name(_in_heads("num_kv_heads"), _LAYER + "self_attn.k_proj.weight"),
    "v_proj": _with_name(_in_heads("num_kv_heads"), _LAYER + "self_attn.v_proj.weight"),
    "o_proj": TensorMapping(
        _LAYER + "self_attn.o_proj.weight",
        to_ours=lambda w, c: w.T.reshape(c.num_heads, c.head_dim, c.hidden_size),
        to_hf=lambda w, c: w.reshape(-1, c.hidden_size).T,
    ),
    "q_norm": TensorMapping(_LAYER + "self_attn.q_norm.weight", _same, _same),
    "k_norm": TensorMapping(_LAYER + "self_attn.k_norm.weight", _same, _same),
    "mlp_norm": TensorMapping(_LAYER + "post_attention_layernorm.weight", _same, _same),
    "gate_proj": TensorMapping(_LAYER + "mlp.gate_proj.weight", _transpose, _transpose),
    "up_proj": TensorMapping(_LAYER + "mlp.up_proj.weight", _transpose, _transpose),
    "down_proj": TensorMapping(_LAYER + "mlp.down_proj.weight", _transpose, _transpose),
}

_EXPERT = _LAYER + "mlp.experts.{e}."
MOE_BLOCK_TENSORS: dict[str, TensorMapping] = {
    "router": TensorMapping(_LAYER + "mlp.gate.weight", _transpose, _transpose),
    "expert_gate": TensorMapping(_EXPERT + "gate_proj.weight", _transpose, _transpose, per_expert=True),
    "expert_up": TensorMapping(_EXPERT + "up_proj.weight", _transpose, _transpose, per_expert=True),
    "expert_down": TensorMapping(_EXPERT + "down_proj.weight", _transpose, _transpose, per_expert=True),
}


def _bias_in_heads(heads: str) -> Convert:
    return lambda w, c: w.reshape(getattr(c, heads), c.head_dim)


def _flat(w, c):
    return w.reshape(-1)


def _interleaved(hf_name: str, part: int) -> TensorMapping:
    """Half of gpt-oss's fused `[.., 2 * mlp]` gate/up tensor: gate the even, up the odd columns."""
    return TensorMapping(hf_name, lambda w, c: w[..., part::2], _same, interleaved=part)


_GPT_OSS_EXPERTS = _LAYER + "mlp.experts."
GPT_OSS_BLOCK_TENSORS: dict[str, TensorMapping] = {
    "q_bias": TensorMapping(_LAYER + "self_attn.q_proj.bias", _bias_in_heads("num_heads"), _flat),
    "k_bias": TensorMapping(_LAYER + "self_attn.k_proj.bias", _bias_in_heads("num_kv_heads"), _flat),
    "v_bias": TensorMapping(_LAYER + "self_attn.v_proj.bias", _bias_in_heads("num_kv_heads"), _flat),
    "o_bias": TensorMapping(_LAYER + "self_attn.o_proj.bias", _same, _same),
    "sinks": TensorMapping(_LAYER + "self_attn.sinks", _same, _same),
    "router": TensorMapping(_LAYER + "mlp.router.weight", _transpose, _transpose),
    "router_bias": TensorMapping(_LAYER + "mlp.router.bias", _same, _same),
    "expert_gate": _interleaved(_GPT_OSS_EXPERTS + "gate_up_proj", 0),
    "expert_up": _interleaved(_GPT_OSS_EXPERTS + "gate_up_proj", 1),
    "expert_gate_bias": _interleaved(_GPT_OSS_EXPERTS + "gate_up_proj_bias", 0),
    "expert_up_bias": _interleaved(_GPT_OSS_EXPERTS + "gate_up_proj_bias", 1),
    "expert_down": TensorMapping(_GPT_OSS_EXPERTS + "down_proj", _same, _same),
    "expert_down_bias": TensorMapping(_GPT_OSS_EXPERTS + "down_proj_bias", _same, _same),
}


def block_tensors(config: ModelConfig) -> dict[str, TensorMapping]:
    """The per-layer tensors of `config`'s family, by our parameter name."""
    if config.family == "gpt_oss":
        return {**BLOCK_TENSORS, **GPT_OSS_BLOCK_TENSORS}
    return {**BLOCK_TENSORS, **MOE_BLOCK_TENSORS} if config.num_experts else BLOCK_TENSORS


def interleave(parts: dict[int, np.ndarray]) -> np.ndarray:
    """gpt-oss's fused tensor from its even (0) and odd (1) column halves."""
    fused = np.empty((*parts[0].shape[:-1], 2 * parts[0].shape[-1]), parts[0].dtype)
    fused[..., 0::2], fused[..., 1::2] = parts[0], parts[1]
    return fused


TOP_TENSORS: dict[str, TensorMapping] = {
    "embed": TensorMapping("model.embed_tokens.weight", _same, _same),
    "final_norm": TensorMapping("model.norm.weight", _same, _same),
    "lm_head": TensorMapping("lm_head.weight", _transpose, _transpose),
}
