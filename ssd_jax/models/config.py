"""One configuration dataclass for every supported decoder family, read from an HF config.json."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

SUPPORTED_FAMILIES = ("llama", "qwen3", "qwen3_moe", "gpt_oss")
ATTENTION_IMPLEMENTATIONS = ("auto", "reference", "blockwise", "splash", "cudnn")  # see models/self_attention.py
# What a rematerialised block keeps for the backward pass (see models/remat.py).
REMAT_POLICIES = ("none", "block", "save_dots", "save_qkv")
_ARCHITECTURE_FAMILY = {
    "LlamaForCausalLM": "llama", "Qwen3ForCausalLM": "qwen3", "Qwen3MoeForCausalLM": "qwen3_moe",
    "GptOssForCausalLM": "gpt_oss",
}
_SUPPORTED_ROPE_TYPES = ("default", "llama3", "yarn")


class UnsupportedModelError(ValueError):
    """The checkpoint describes an architecture or option ssd-jax does not implement."""


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """Llama-3.1 style frequency-dependent rope scaling (`rope_type: llama3`)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclasses.dataclass(frozen=True)
class YarnScaling:
    """YaRN rope scaling (`rope_type: yarn`, as gpt-oss uses it): frequencies blended between
    interpolated and original by a ramp over `beta_fast..beta_slow` rotations, cos/sin scaled by
    `attention_factor`."""

    factor: float
    beta_fast: float
    beta_slow: float
    original_max_position_embeddings: int
    truncate: bool
    attention_factor: float


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of a decoder-only transformer (Llama, Qwen3 dense, Qwen3-MoE).

    `num_experts > 0` makes every block's feed-forward a mixture of `num_experts` SwiGLU experts
    of width `moe_intermediate_size`, `num_experts_per_tok` of them per token (`models/moe.py`),
    except the blocks in `dense_layers`, whose feed-forward is a dense SwiGLU MLP of width
    `intermediate_size` (Qwen3-MoE's `mlp_only_layers` / `decoder_sparse_step`);
    `router_aux_loss_coef` weighs the router's load-balancing loss in training. gpt-oss adds:
    biases on the projections, router and experts (`attention_bias`), a learned attention sink
    per head (`attention_sinks`), each layer's sliding window (`layer_windows`, 0: full
    attention), and the clamped SwiGLU (`swiglu_limit`, `swiglu_alpha`). `dtype` is the compute dtype, `param_dtype` the storage dtype of parameters; `remat` is
    the rematerialisation policy of each block in the backward pass (`REMAT_POLICIES`; True /
    False mean `block` / `none`); `attention` picks the full-sequence attention implementation.
    """

    family: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | YarnScaling | None = None
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    qk_norm: bool = False
    max_position_embeddings: int = 4096
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: str = "none"
    attention: str = "auto"
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    norm_topk_prob: bool = False
    dense_layers: tuple[int, ...] = ()
    router_aux_loss_coef: float = 0.0
    attention_bias: bool = False
    attention_sinks: bool = False
    layer_windows: tuple[int, ...] = ()
    swiglu_limit: float | None = None
    swiglu_alpha: float = 1.702

    def __post_init__(self):
        if isinstance(self.remat, bool):
            object.__setattr__(self, "remat", "block" if self.remat else "none")
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat {self.remat!r}: choose one of {REMAT_POLICIES}")
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(f"attention {self.attention!r}: choose one of {ATTENTION_IMPLEMENTATIONS}")
        if self.family not in SUPPORTED_FAMILIES:
            raise UnsupportedModelError(
                f"model family {self.family!r} is not supported; supported: {SUPPORTED_FAMILIES}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if len({w for w in self.layer_windows if w}) > 1:
            raise ValueError(f"layer_windows {self.layer_windows}: one sliding window size (or 0) for all layers")
        if self.layer_windows and len(self.layer_windows) != self.num_layers:
            raise ValueError(f"layer_windows has {len(self.layer_windows)} entries for {self.num_layers} layers")
        if self.num_experts and not 0 < self.num_experts_per_tok <= self.num_experts:
            raise ValueError(
                f"num_experts_per_tok ({self.num_experts_per_tok}) must be between 1 and num_experts ({self.num_experts})"
            )
        if any(not 0 <= i < self.num_layers for i in self.dense_layers) or list(self.dense_layers) != sorted(
                set(self.dense_layers)):
            raise ValueError(f"dense_layers {self.dense_layers}: distinct, increasing layer indices below {self.num_layers}")
        if self.dense_layers and not self.num_experts:
            raise ValueError("dense_layers: only a mixture-of-experts model (num_experts > 0) has dense layers among sparse ones")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in ("float32", "bfloat16"):
                raise ValueError(f"{name} must be 'float32' or 'bfloat16', got {getattr(self, name)!r}")

    @property
    def sparse_layers(self) -> tuple[int, ...]:
        """The layers whose feed-forward is a mixture of experts."""
        if not self.num_experts:
            return ()
        return tuple(i for i in range(self.num_layers) if i not in self.dense_layers)

    @property
    def mlp_layers(self) -> tuple[int, ...]:
        """The layers whose feed-forward is a dense MLP (every layer of a dense model)."""
        return tuple(i for i in range(self.num_layers) if i not in self.sparse_layers)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf(cls, hf: dict[str, Any], **overrides: Any) -> "ModelConfig":
        """Reads an HF `config.json` dict; refuses anything that would load as a wrong model."""
        family = _family_of(hf)
        _reject_unsupported_options(hf, family)
        num_heads = _require(hf, "num_attention_heads")
        hidden = _require(hf, "hidden_size")
        rope_theta, rope_scaling = _read_rope(hf)
        eos = hf.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
        fields = dict(
            family=family,
            vocab_size=_require(hf, "vocab_size"),
            hidden_size=hidden,
            intermediate_size=_require(hf, "intermediate_size"),
            num_layers=_require(hf, "num_hidden_layers"),
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hidden // num_heads,
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qk_norm=family in ("qwen3", "qwen3_moe"),
            max_position_embeddings=hf.get("max_position_embeddings", 4096),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_ids=eos_ids,
        )
        if family == "qwen3_moe":
            fields.update(_read_qwen3_moe(hf))
        if family == "gpt_oss":
            fields.update(_read_gpt_oss(hf, fields["num_layers"]))
        fields.update(overrides)
        return cls(**fields)

    def to_hf(self) -> dict[str, Any]:
        """The HF `config.json` dict that `transformers` loads as the same architecture."""
        rope: dict[str, Any] = {"rope_type": "default", "rope_theta": self.rope_theta}
        if self.rope_scaling is not None:
            rope_type = "yarn" if isinstance(self.rope_scaling, YarnScaling) else "llama3"
            rope = {"rope_type": rope_type, "rope_theta": self.rope_theta, **dataclasses.asdict(self.rope_scaling)}
        architecture = {v: k for k, v in _ARCHITECTURE_FAMILY.items()}[self.family]
        eos = list(self.eos_token_ids)
        return {
            "architectures": [architecture],
            "model_type": self.family,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": None if self.rope_scaling is None else rope,
            "rope_parameters": rope,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "mlp_bias": False,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos[0] if len(eos) == 1 else (eos or None),
            "torch_dtype": self.param_dtype,
            **self._moe_hf_fields(),
        }

    def _moe_hf_fields(self) -> dict[str, Any]:
        if self.family == "gpt_oss":
            windows = {w for w in self.layer_windows if w}
            return {
                "num_local_experts": self.num_experts,
                "num_experts_per_tok": self.num_experts_per_tok,
                "router_aux_loss_coef": self.router_aux_loss_coef,
                "sliding_window": windows.pop() if windows else None,
                "layer_types": ["sliding_attention" if w else "full_attention" for w in self.layer_windows],
                "swiglu_limit": self.swiglu_limit,
                "swiglu_alpha": self.swiglu_alpha,
            }
        if not self.num_experts:
            return {}
        return {
            "num_experts": self.num_experts,
            "num_experts_per_tok": self.num_experts_per_tok,
            "moe_intermediate_size": self.moe_intermediate_size,
            "norm_topk_prob": self.norm_topk_prob,
            "router_aux_loss_coef": self.router_aux_loss_coef,
            "decoder_sparse_step": 1,
            "mlp_only_layers": list(self.dense_layers),
        }


def _family_of(hf: dict[str, Any]) -> str:
    model_type = hf.get("model_type")
    if model_type in SUPPORTED_FAMILIES:
        return model_type
    for arch in hf.get("architectures") or ():
        if arch in _ARCHITECTURE_FAMILY:
            return _ARCHITECTURE_FAMILY[arch]
    raise UnsupportedModelError(
        f"config.json has model_type={model_type!r}, architectures={hf.get('architectures')!r}; "
        f"ssd-jax supports the families {SUPPORTED_FAMILIES} "
        f"(architectures {sorted(_ARCHITECTURE_FAMILY)})."
    )


def _read_qwen3_moe(hf: dict[str, Any]) -> dict[str, Any]:
    """Qwen3-MoE's expert fields. A layer is dense, as transformers' `Qwen3MoeDecoderLayer`
    decides, when it is in `mlp_only_layers` or its number (from 1) is not a multiple of
    `decoder_sparse_step`."""
    num_experts = hf.get("num_experts", hf.get("num_local_experts"))
    if not num_experts:
        raise UnsupportedModelError("config.json field 'num_experts': a qwen3_moe model needs experts (got none)")
    num_layers = int(_require(hf, "num_hidden_layers"))
    step = hf.get("decoder_sparse_step", 1)
    if not isinstance(step, int) or step < 1:
        raise UnsupportedModelError(f"config.json field 'decoder_sparse_step' ({step!r}): must be a positive integer")
    mlp_only = set(hf.get("mlp_only_layers") or ())
    dense = tuple(i for i in range(num_layers) if i in mlp_only or (i + 1) % step)
    return dict(
        num_experts=int(num_experts),
        num_experts_per_tok=int(_require(hf, "num_experts_per_tok")),
        moe_intermediate_size=int(_require(hf, "moe_intermediate_size")),
        norm_topk_prob=bool(hf.get("norm_topk_prob", False)),
        dense_layers=dense,
        router_aux_loss_coef=float(hf.get("router_aux_loss_coef", 0.0)),
    )


def _read_gpt_oss(hf: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """gpt-oss's experts, attention sinks and per-layer windows (`layer_types`)."""
    layer_types = hf.get("layer_types") or ["sliding_attention" if i % 2 == 0 else "full_attention"
                                            for i in range(num_layers)]
    unknown = sorted(set(layer_types) - {"sliding_attention", "full_attention"})
    if unknown or len(layer_types) != num_layers:
        raise UnsupportedModelError(
            f"config.json field 'layer_types': expected {num_layers} of 'sliding_attention' / 'full_attention', "
            f"got {layer_types}"
        )
    window = int(hf.get("sliding_window") or 0)
    return dict(
        num_experts=int(_require(hf, "num_local_experts")),
        num_experts_per_tok=int(_require(hf, "num_experts_per_tok")),
        moe_intermediate_size=int(_require(hf, "intermediate_size")),
        router_aux_loss_coef=float(hf.get("router_aux_loss_coef", 0.0)),
        attention_bias=bool(hf.get("attention_bias", True)),
        attention_sinks=True,
        layer_windows=tuple(window if t == "sliding_attention" else 0 for t in layer_types),
        swiglu_limit=float(hf.get("swiglu_limit", 7.0)),
        swiglu_alpha=float(hf.get("swiglu_alpha", 1.702)),
    )


def _reject_unsupported_options(hf: dict[str, Any], family: str) -> None:
    checks = {
        "hidden_act": (hf.get("hidden_act", "silu") in ("silu", "swish"), "only 'silu' is supported"),
        "attention_bias": (family == "gpt_oss" or not hf.get("attention_bias", False),
                           "biased q/k/v/o projections are supported for gpt_oss only"),
        "mlp_bias": (not hf.get("mlp_bias", False), "biased MLP projections are not supported"),
        "use_sliding_window": (not hf.get("use_sliding_window", False), "sliding-window attention is not supported"),
        "partial_rotary_factor": (
            (hf.get("rope_parameters") or {}).get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0)) == 1.0,
            "partial rotary embeddings are not supported",
        ),
    }
    for field, (ok, why) in checks.items():
        if not ok:
            raise UnsupportedModelError(f"config.json field {field!r}: {why} (family {family!r}).")


def _read_rope(hf: dict[str, Any]) -> tuple[float, RopeScaling | None]:
    params = dict(hf.get("rope_scaling") or {})
    params.update(hf.get("rope_parameters") or {})
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in _SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"config.json rope type {rope_type!r} is not supported; supported: {_SUPPORTED_ROPE_TYPES}"
        )
    if rope_type == "default":
        return theta, None
    if rope_type == "yarn":
        return theta, _read_yarn(hf, params)
    try:
        scaling = RopeScaling(
            factor=float(params["factor"]),
            low_freq_factor=float(params["low_freq_factor"]),
            high_freq_factor=float(params["high_freq_factor"]),
            original_max_position_embeddings=int(params["original_max_position_embeddings"]),
        )
    except KeyError as missing:
        raise ValueError(f"config.json llama3 rope scaling is missing the field {missing}") from None
    return theta, scaling


def _read_yarn(hf: dict[str, Any], params: dict[str, Any]) -> YarnScaling:
    """YaRN parameters with transformers' defaults (`_compute_yarn_parameters`)."""
    original = params.get("original_max_position_embeddings")
    if original is None:
        raise ValueError("config.json yarn rope scaling is missing the field 'original_max_position_embeddings'")
    factor = params.get("factor") or hf.get("max_position_embeddings", original) / original
    mscale, mscale_all_dim = params.get("mscale"), params.get("mscale_all_dim")

    def get_mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        attention_factor = (get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
                            if mscale and mscale_all_dim else get_mscale(factor))
    return YarnScaling(
        factor=float(factor), beta_fast=float(params.get("beta_fast") or 32), beta_slow=float(params.get("beta_slow") or 1),
        original_max_position_embeddings=int(original), truncate=bool(params.get("truncate", True)),
        attention_factor=float(attention_factor),
    )


def _require(hf: dict[str, Any], field: str) -> Any:
    if field not in hf:
        raise ValueError(f"config.json is missing the required field {field!r}")
    return hf[field]
