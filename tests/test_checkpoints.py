"""load_model on every checkpoint kind: GGUF and ssd-jax model dirs, against transformers."""

import json
import types

import jax
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from gguf_tiny import random_tensors, tiny_tokens, write_tiny_gguf
from hf_tiny import hf_logits, save_tiny
from ssd_jax import load_model
from ssd_jax.checkpoints.load import end_of_sequence_ids
from ssd_jax.errors import InputError
from ssd_jax.parallel import make_mesh


def _scaled(tensors: dict) -> dict:
    """Weights of a plausible scale (logits of order 1), norms near 1."""
    return {k: (1 + 0.1 * v) if "norm" in k else 0.05 * v for k, v in tensors.items()}


# transformers' GGUF loader ignores a qwen3 file's key_length and assumes head_dim 128.
@pytest.mark.parametrize("arch, head_dim, tied", [("llama", 16, True), ("qwen3", 128, False)])
def test_tiny_gguf_logits_match_transformers_reading_the_same_file(tmp_path, arch, head_dim, tied):
    tokens = tiny_tokens()
    tensors = _scaled(random_tensors(arch, head_dim, len(tokens), tied, np.random.default_rng(0)))
    write_tiny_gguf(tmp_path / "tiny.gguf", arch, tensors, head_dim, tokens)
    ours = load_model(str(tmp_path / "tiny.gguf"))
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path), gguf_file="tiny.gguf", dtype=torch.float32
    ).eval()
    ids = np.random.RandomState(1).randint(0, len(tokens), (2, 21))
    np.testing.assert_allclose(ours.logits(ids), hf_logits(reference, ids), atol=1e-4, rtol=0)


def test_ssd_model_dir_round_trip_onto_a_mesh(tmp_path):
    save_tiny("qwen3_untied", str(tmp_path / "hf"))
    with open(tmp_path / "hf" / "config.json") as f:
        vocab = json.load(f)["vocab_size"]
    (tmp_path / "hf" / "tokenizer.json").write_text(_byte_tokenizer_json())
    original = load_model(str(tmp_path / "hf"))
    original.save(str(tmp_path / "ssd"))
    restored = load_model(str(tmp_path / "ssd"), mesh=make_mesh(2, 2, 2))
    assert restored.model.blocks.gate_proj[...].sharding.spec[2] == "model"
    for ours, theirs in zip(jax.tree.leaves(nnx.state(restored.model)), jax.tree.leaves(nnx.state(original.model))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    ids = np.random.RandomState(0).randint(0, vocab, (8, 16))
    np.testing.assert_allclose(restored.logits(ids), original.logits(ids), atol=1e-5, rtol=0)
    assert restored.tokenizer.encode("def f(x):") == original.tokenizer.encode("def f(x):")


def _byte_tokenizer_json() -> str:
    from ssd_jax.checkpoints.tiny import tiny_tokenizer

    return tiny_tokenizer().backend.to_str()


@pytest.mark.parametrize(
    "ref, message",
    [("/nonexistent/model.gguf", "does not exist"), ("/nonexistent", "cannot load model"), ("no-such-model", "built-in")],
)
def test_bad_references_say_what_is_accepted(ref, message):
    with pytest.raises(InputError, match=message):
        load_model(ref)


def test_ssd_model_dir_saves_and_loads_by_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = load_model("tiny-random")
    original.save("runs/demo/train/final")
    restored = load_model("runs/demo/train/final")
    for ours, theirs in zip(jax.tree.leaves(nnx.state(restored.model)), jax.tree.leaves(nnx.state(original.model))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_end_of_sequence_ids_are_decided_in_one_place():
    tokenizer = types.SimpleNamespace(eos_id=2, token_to_id={"<|im_end|>": 7}.get)
    template = types.SimpleNamespace(end_of_turn_text="<|im_end|>")
    config = types.SimpleNamespace(eos_token_ids=(3,))
    assert end_of_sequence_ids((5, 6), config, tokenizer, template) == (5, 6, 7)  # the checkpoint's own list first
    assert end_of_sequence_ids((), config, tokenizer, template) == (3, 7)  # then config.json's
    assert end_of_sequence_ids((), types.SimpleNamespace(eos_token_ids=()), tokenizer, None) == (2,)  # the tokenizer's
    assert end_of_sequence_ids((7, 3), config, tokenizer, template) == (7, 3)  # each id once
