"""Our Flax models compute what HF transformers computes: logits, packing, KV cache, sharding."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from hf_tiny import (
    VARIANTS,
    exported_and_reloaded,
    forward,
    forward_cached,
    hf_logits,
    load_ours,
    packed,
    prefill_then_decode,
    random_tokens,
    save_tiny,
    tiny_fixture,
)

from ssd_jax.checkpoints.hf import hf_tensors
from ssd_jax.models import ModelConfig, UnsupportedModelError, init_cache
from ssd_jax.parallel import make_mesh

tiny = tiny_fixture(VARIANTS)


def test_logits_match_transformers(tiny):
    _, directory, reference = tiny
    tokens = random_tokens()
    ours = np.asarray(load_ours(directory)(jnp.asarray(tokens)))
    np.testing.assert_allclose(ours, hf_logits(reference, tokens), atol=1e-4, rtol=0)


def test_gradients_match_transformers(tiny):
    """The hand-written backward passes (gated MLP, attention) against torch autograd of HF's model."""
    _, directory, reference = tiny
    tokens = random_tokens(2, 29)
    model = load_ours(directory)
    graphdef, params = nnx.split(model, nnx.Param)

    def next_token_loss(params):
        logits = nnx.merge(graphdef, params)(jnp.asarray(tokens[:, :-1]))
        return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], axis=-1))

    nnx.update(model, jax.jit(jax.grad(next_token_loss))(params))
    ours = {name: np.asarray(value) for name, value in hf_tensors(model).items()}

    reference.zero_grad()
    logits = reference(torch.as_tensor(tokens[:, :-1])).logits
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.as_tensor(tokens[:, 1:]).flatten().long()).backward()
    theirs = {name: param.grad.numpy() for name, param in reference.named_parameters()}
    assert set(ours) == set(theirs)
    for name, grad in theirs.items():
        np.testing.assert_allclose(ours[name], grad, atol=1e-5 * np.abs(grad).max(), rtol=1e-3, err_msg=name)


def test_packed_segments_equal_separate_runs(tiny):
    _, directory, _ = tiny
    model = load_ours(directory)
    pieces, tokens, positions, segments = packed([11, 17, 9])
    logits = np.asarray(forward(model, jnp.asarray(tokens), jnp.asarray(positions), jnp.asarray(segments)))
    start = 0
    for piece in pieces:
        alone = np.asarray(forward(model, jnp.asarray(piece[None])))
        np.testing.assert_allclose(logits[:, start : start + len(piece)], alone, atol=1e-5, rtol=0)
        start += len(piece)


def test_prefill_then_decode_matches_full_forward(tiny):
    _, directory, _ = tiny
    model = load_ours(directory)
    tokens = random_tokens(2, 24)
    full = np.asarray(forward(model, jnp.asarray(tokens)))
    np.testing.assert_allclose(prefill_then_decode(model, tokens, prompt=10, max_len=32), full, atol=1e-5, rtol=0)


def test_left_padded_prefill_matches_unpadded(tiny):
    _, directory, _ = tiny
    model = load_ours(directory)
    tokens = random_tokens(1, 12)
    pad, max_len = 5, 20
    padded = np.concatenate([np.zeros((1, pad), np.int32), tokens], axis=1)
    positions = np.maximum(np.arange(pad + 12) - pad, 0)[None]
    key_mask = (np.arange(max_len) >= pad)[None]
    logits, _ = forward_cached(model,
        jnp.asarray(padded), jnp.asarray(positions), init_cache(model.config, 1, max_len), jnp.int32(0),
        jnp.asarray(key_mask),
    )
    np.testing.assert_allclose(np.asarray(logits)[:, pad:], np.asarray(forward(model, jnp.asarray(tokens))), atol=1e-5)


def _check_sharded(directory, reference, shape):
    mesh = make_mesh(*shape)
    model = load_ours(directory, mesh)
    if shape[2] > 1:
        assert model.blocks.gate_proj[...].sharding.spec[2] == "model", "mlp should be split over `model`"
        heads_split = model.blocks.k_proj[...].sharding.spec[2] == "model"
        assert heads_split == (model.config.num_kv_heads % shape[2] == 0), "kv heads split only where they divide"
    if shape[1] > 1:
        assert model.embed[...].sharding.spec[1] == "fsdp", "embed should be split over `fsdp`"
    tokens = random_tokens(8, 16)
    ours = np.asarray(forward(model, jnp.asarray(tokens)))
    np.testing.assert_allclose(ours, hf_logits(reference, tokens), atol=1e-4, rtol=0)


def test_sharded_load_matches_single_device(tiny):
    _, directory, reference = tiny
    _check_sharded(directory, reference, (2, 2, 2))


@pytest.mark.parametrize("shape", [(8, 1, 1), (1, 8, 1), (1, 1, 8), (1, 4, 2)])
def test_every_mesh_shape(shape, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("mesh"))
    reference = save_tiny("qwen3_untied", directory)
    _check_sharded(directory, reference, shape)


def test_export_round_trip(tiny, tmp_path):
    _, directory, reference = tiny
    reloaded = exported_and_reloaded(load_ours(directory), str(tmp_path))
    tokens = random_tokens()
    np.testing.assert_allclose(hf_logits(reloaded, tokens), hf_logits(reference, tokens), atol=1e-6, rtol=0)


# bfloat16 weights and compute put these logits within ~0.008 of float32 HF (their spread is ~0.17);
# zeroing any one block's MLP output moves some logit by 0.065 or more.
BFLOAT16_ATOL = 0.02


def test_bfloat16_compute_stays_close(tiny):
    _, directory, reference = tiny
    tokens = random_tokens()
    ours = np.asarray(load_ours(directory, dtype="bfloat16", param_dtype="bfloat16")(jnp.asarray(tokens)))
    assert ours.dtype == np.float32
    expected = hf_logits(reference, tokens)
    np.testing.assert_allclose(ours, expected, atol=BFLOAT16_ATOL, rtol=0)
    for index in range(len(reference.model.layers)):  # the tolerance is tight enough to see a block missing
        ablated = copy.deepcopy(reference)
        with torch.no_grad():
            ablated.model.layers[index].mlp.down_proj.weight.zero_()
        assert np.abs(hf_logits(ablated, tokens) - expected).max() > BFLOAT16_ATOL


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model_type": "mixtral", "architectures": ["MixtralForCausalLM"]}, "model_type"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"attention_bias": True}, "attention_bias"),
        ({"rope_scaling": {"rope_type": "longrope", "factor": 4.0}, "rope_parameters": None}, "longrope"),
    ],
)
def test_unsupported_configs_are_refused(change, field):
    config = transformers.LlamaConfig(num_hidden_layers=1).to_dict()
    config.update(change)
    with pytest.raises(UnsupportedModelError, match=field):
        ModelConfig.from_hf(config)
