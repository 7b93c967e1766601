"""Tiny random HF transformers checkpoints, the numerical truth for model tests, and what the
HF-parity tests share: the checkpoint as a module fixture, ssd-jax's model loaded from it, and
its forward passes (whole sequence, packed segments, through the KV cache)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from ssd_jax.checkpoints.hf import export_hf, model_from_tensors
from ssd_jax.checkpoints.tensor_source import SafetensorsSource
from ssd_jax.models import ModelConfig, init_cache

TINY = dict(vocab_size=160, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}

VARIANTS = {
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY)),
    "llama3_rope": lambda: transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**TINY, rope_scaling=LLAMA3_ROPE, rope_theta=500000.0)
    ),
    "llama_tied": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY, tie_word_embeddings=True)),
    "qwen3_untied": lambda: transformers.Qwen3ForCausalLM(
        transformers.Qwen3Config(**TINY, head_dim=24, tie_word_embeddings=False)
    ),
    "qwen3_tied": lambda: transformers.Qwen3ForCausalLM(
        transformers.Qwen3Config(**TINY, head_dim=24, tie_word_embeddings=True)
    ),
}


TINY_MOE = dict(TINY, num_experts=8, num_experts_per_tok=3, moe_intermediate_size=32, head_dim=16,
                router_aux_loss_coef=0.01)

MOE_VARIANTS = {
    "qwen3_moe": lambda: transformers.Qwen3MoeForCausalLM(transformers.Qwen3MoeConfig(**TINY_MOE)),
    "qwen3_moe_norm_topk": lambda: transformers.Qwen3MoeForCausalLM(
        transformers.Qwen3MoeConfig(**TINY_MOE, norm_topk_prob=True, tie_word_embeddings=True)
    ),
    # Dense and sparse blocks mixed: layers 0 and 2 dense (`mlp_only_layers`), 1 and 3 experts.
    "qwen3_moe_mixed": lambda: transformers.Qwen3MoeForCausalLM(
        transformers.Qwen3MoeConfig(**{**TINY_MOE, "num_hidden_layers": 4}, mlp_only_layers=[0, 2])
    ),
}

TINY_GPT_OSS = dict(TINY, intermediate_size=32, head_dim=16, num_local_experts=8, num_experts_per_tok=2,
                    sliding_window=8, router_aux_loss_coef=0.01,
                    rope_parameters={"rope_type": "yarn", "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                     "truncate": False, "original_max_position_embeddings": 16,
                                     "rope_theta": 150000.0})
MOE_VARIANTS["gpt_oss"] = lambda: transformers.GptOssForCausalLM(transformers.GptOssConfig(**TINY_GPT_OSS))


def save_tiny(variant: str, directory: str, seed: int = 0) -> transformers.PreTrainedModel:
    """Creates the tiny random model `variant`, saves it as safetensors in `directory`."""
    torch.manual_seed(seed)
    model = {**VARIANTS, **MOE_VARIANTS}[variant]().eval()
    with torch.no_grad():  # non-trivial norm weights, so a missed norm cannot pass
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            elif "sinks" in name or "bias" in name:  # untrained gpt-oss leaves these empty (uninitialised)
                param.copy_(0.5 * torch.randn_like(param))
    model.save_pretrained(directory)
    return model


def hf_logits(model: transformers.PreTrainedModel, tokens) -> "numpy.ndarray":
    with torch.no_grad():
        return model(torch.as_tensor(tokens)).logits.float().numpy()


def tiny_fixture(variants: dict):
    """A module-scoped fixture over `variants`: (variant, checkpoint directory, HF model)."""

    @pytest.fixture(scope="module", params=sorted(variants))
    def tiny(request, tmp_path_factory):
        directory = str(tmp_path_factory.mktemp(request.param))
        return request.param, directory, save_tiny(request.param, directory)

    return tiny


def load_ours(directory: str, mesh=None, **overrides):
    """ssd-jax's model read from the HF checkpoint in `directory` (`overrides`: ModelConfig fields)."""
    with open(f"{directory}/config.json") as f:
        config = ModelConfig.from_hf(json.load(f), **overrides)
    return model_from_tensors(config, SafetensorsSource(directory), mesh)


def random_tokens(batch: int = 3, length: int = 37, vocab: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, vocab, (batch, length)).astype(np.int32)


@nnx.jit
def forward(model, tokens, positions=None, segment_ids=None):
    return model(tokens, positions, segment_ids)


@nnx.jit
def forward_cached(model, tokens, positions, cache, write_index, key_mask):
    return model.forward_cached(tokens, positions, cache, write_index, key_mask)


def packed(lengths: list[int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Random sequences of `lengths` and their packing into one row: (pieces, tokens, positions,
    segment ids numbered from 1)."""
    pieces = [random_tokens(1, n, seed=i)[0] for i, n in enumerate(lengths)]
    tokens = np.concatenate(pieces)[None]
    segments = np.concatenate([np.full(n, i + 1) for i, n in enumerate(lengths)])[None]
    positions = np.concatenate([np.arange(n) for n in lengths])[None]
    return pieces, tokens, positions, segments


def prefill_then_decode(model, tokens: np.ndarray, prompt: int, max_len: int = 32) -> np.ndarray:
    """Logits of every position of `tokens`: the first `prompt` tokens prefilled into a fresh
    contiguous KV cache of `max_len` slots, then one token per step."""
    batch = tokens.shape[0]
    cache = init_cache(model.config, batch, max_len)
    slots = jnp.arange(max_len)[None].repeat(batch, 0)
    logits, cache = forward_cached(
        model, jnp.asarray(tokens[:, :prompt]), slots[:, :prompt], cache, jnp.int32(0), slots < prompt)
    steps = [np.asarray(logits)]
    for t in range(prompt, tokens.shape[1]):
        logits, cache = forward_cached(
            model, jnp.asarray(tokens[:, t:t + 1]), slots[:, t:t + 1], cache, jnp.int32(t), slots <= t)
        steps.append(np.asarray(logits))
    return np.concatenate(steps, axis=1)


def exported_and_reloaded(model, directory: str) -> transformers.PreTrainedModel:
    """`model` exported as an HF checkpoint into `directory`, read back by transformers."""
    export_hf(model, directory)
    return transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
