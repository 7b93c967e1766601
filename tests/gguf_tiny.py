"""Tiny GGUF files written with gguf's own writer, laid out as llama.cpp's converter lays them out."""

import gguf
import numpy as np

ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen3": gguf.MODEL_ARCH.QWEN3}
TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
# Stored as Q8_0 (the rest as F32), including both permuted projections.
QUANTIZED = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "mlp.gate_proj.weight")


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py `LlamaModel.permute`, the layout a llama GGUF stores Q/K in."""
    pairs = weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
    return pairs.swapaxes(1, 2).reshape(weights.shape)


def tiny_tokens() -> list[str]:
    printable = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    return SPECIAL_TOKENS + printable + ["Ġ", "th", "the", "Ġthe"]


def random_tensors(arch: str, head_dim: int, vocab_size: int, tied: bool, rng: np.random.Generator) -> dict:
    hidden, inter = TINY["hidden_size"], TINY["intermediate_size"]
    q_rows, kv_rows = TINY["num_attention_heads"] * head_dim, TINY["num_key_value_heads"] * head_dim
    shapes = {"model.embed_tokens.weight": (vocab_size, hidden), "model.norm.weight": (hidden,)}
    if not tied:
        shapes["lm_head.weight"] = (vocab_size, hidden)
    for layer in range(TINY["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        shapes |= {
            prefix + "input_layernorm.weight": (hidden,),
            prefix + "post_attention_layernorm.weight": (hidden,),
            prefix + "self_attn.q_proj.weight": (q_rows, hidden),
            prefix + "self_attn.k_proj.weight": (kv_rows, hidden),
            prefix + "self_attn.v_proj.weight": (kv_rows, hidden),
            prefix + "self_attn.o_proj.weight": (hidden, q_rows),
            prefix + "mlp.gate_proj.weight": (inter, hidden),
            prefix + "mlp.up_proj.weight": (inter, hidden),
            prefix + "mlp.down_proj.weight": (hidden, inter),
        }
        if arch == "qwen3":
            shapes |= {prefix + "self_attn.q_norm.weight": (head_dim,), prefix + "self_attn.k_norm.weight": (head_dim,)}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def write_tiny_gguf(path, arch: str, tensors: dict, head_dim: int, tokens: list[str]) -> None:
    """A GGUF as llama.cpp's converter writes one: llama.cpp tensor names, permuted llama Q/K, Q8_0 blocks."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(256)
    writer.add_embedding_length(TINY["hidden_size"])
    writer.add_feed_forward_length(TINY["intermediate_size"])
    writer.add_block_count(TINY["num_hidden_layers"])
    writer.add_head_count(TINY["num_attention_heads"])
    writer.add_head_count_kv(TINY["num_key_value_heads"])
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_key_length(head_dim)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_merges(["t h", "th e", "Ġ the"])
    writer.add_token_types([3] * len(SPECIAL_TOKENS) + [1] * (len(tokens) - len(SPECIAL_TOKENS)))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(TEMPLATE)
    name_map = gguf.get_tensor_name_map(ARCHS[arch], TINY["num_hidden_layers"])
    for name, values in tensors.items():
        gguf_name = name_map.get_name(name, try_suffixes=(".weight",))
        if arch == "llama" and name.endswith("q_proj.weight"):
            values = llama_cpp_permute(values, TINY["num_attention_heads"])
        if arch == "llama" and name.endswith("k_proj.weight"):
            values = llama_cpp_permute(values, TINY["num_key_value_heads"])
        if name.endswith(QUANTIZED):
            quantized = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(gguf_name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(gguf_name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
