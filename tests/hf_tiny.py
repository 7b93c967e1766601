"""Tiny random HF transformers checkpoints, the numerical truth for model tests."""

from __future__ import annotations

import torch
import transformers

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

