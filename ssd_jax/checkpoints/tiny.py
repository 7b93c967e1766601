"""`tiny-random`: a 2-layer random Llama with a byte-level tokenizer and a ChatML template.

It needs no download and compiles in seconds, so every launcher and test can run the whole
pipeline on a CPU with it (`configs/tiny.py`). Its outputs are noise by design.
"""

from __future__ import annotations

from typing import Any

from ssd_jax.text.chat import ChatTemplate
from ssd_jax.text.tokenizer import HFTokenizer, _byte_alphabet, byte_level_bpe_tokenizer

NAME = "tiny-random"
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", *(f"<|reserved_{i}|>" for i in range(5)))
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_hf_config() -> dict[str, Any]:
    vocab = 256 + len(SPECIAL_TOKENS)
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": True, "bos_token_id": 257, "eos_token_id": 258,
    }


def tiny_tokenizer() -> HFTokenizer:
    tokens = [*_byte_alphabet().values(), *SPECIAL_TOKENS]
    types = [1] * 256 + [3] * len(SPECIAL_TOKENS)
    special_ids = {"bos_token": 257, "eos_token": 258, "unk_token": 256, "pad_token": 256}
    return byte_level_bpe_tokenizer(tokens, [], types, None, special_ids)


def tiny_chat_template() -> ChatTemplate:
    return ChatTemplate(CHATML_TEMPLATE, bos_token="<|im_start|>", eos_token="<|im_end|>")
