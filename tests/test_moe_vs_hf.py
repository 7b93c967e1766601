"""Mixture-of-experts models compute what HF transformers computes: logits, packing, the KV
cache, the router's load-balancing loss, export, and the same results on expert-parallel meshes."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from hf_tiny import (
    MOE_VARIANTS,
    exported_and_reloaded,
    forward,
    hf_logits,
    load_ours,
    packed,
    prefill_then_decode,
    random_tokens,
    save_tiny,
    tiny_fixture,
)

from ssd_jax.models import ModelConfig, UnsupportedModelError
from ssd_jax.models.kv_cache import init_paged_cache

tiny = tiny_fixture(MOE_VARIANTS)


def test_logits_match_transformers(tiny):
    _, directory, reference = tiny
    tokens = random_tokens()
    ours = np.asarray(forward(load_ours(directory), jnp.asarray(tokens)))
    theirs = hf_logits(reference, tokens)
    print(f"largest logit difference: {np.abs(ours - theirs).max():.2e}")
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_packed_segments_match_transformers_per_segment(tiny):
    _, directory, reference = tiny
    lengths = [11, 17, 9]
    pieces, tokens, positions, segments = packed(lengths)
    logits = np.asarray(forward(load_ours(directory), jnp.asarray(tokens), jnp.asarray(positions),
                                jnp.asarray(segments)))
    starts = np.cumsum([0, *lengths])
    for piece, start in zip(pieces, starts):
        np.testing.assert_allclose(logits[:, start:start + len(piece)], hf_logits(reference, piece[None]),
                                   atol=1e-4, rtol=0)


def test_prefill_then_decode_matches_transformers(tiny):
    _, directory, reference = tiny
    model = load_ours(directory)
    tokens = random_tokens(2, 24)
    np.testing.assert_allclose(prefill_then_decode(model, tokens, prompt=10, max_len=32), hf_logits(reference, tokens),
                               atol=1e-4, rtol=0)


@nnx.jit
def _forward_paged(model, tokens, kv_lens, q_lens, cache, page_table):
    return model.forward_paged(tokens, kv_lens, q_lens, cache, page_table)


def test_paged_prefill_and_decode_match_transformers(tiny):
    """The continuous-batching sampler's path: a prompt prefilled in two chunks into scattered
    pages, then one token at a time; longer than gpt-oss's window, so window and sinks matter."""
    _, directory, reference = tiny
    model = load_ours(directory)
    tokens = random_tokens(1, 30)
    page_size, chunk = 4, 7
    page_table = jnp.asarray([[5, 2, 7, 1, 3, 6, 4, 8]], jnp.int32)  # 8 pages of 4 hold 32 tokens
    cache = init_paged_cache(model.config, num_pages=9, page_size=page_size)
    steps = []
    for start in (0, chunk):  # prefill: two chunks of 7
        logits, cache = _forward_paged(model, jnp.asarray(tokens[:, start:start + chunk]),
                                       jnp.asarray([start + chunk], jnp.int32), jnp.asarray([chunk], jnp.int32),
                                       cache, page_table)
        steps.append(np.asarray(logits))
    for t in range(2 * chunk, tokens.shape[1]):
        logits, cache = _forward_paged(model, jnp.asarray(tokens[:, t:t + 1]), jnp.asarray([t + 1], jnp.int32),
                                       jnp.asarray([1], jnp.int32), cache, page_table)
        steps.append(np.asarray(logits))
    ours = np.concatenate(steps, axis=1)
    print(f"largest logit difference through the paged cache: {np.abs(ours - hf_logits(reference, tokens)).max():.2e}")
    np.testing.assert_allclose(ours, hf_logits(reference, tokens), atol=1e-4, rtol=0)


def test_router_loss_matches_transformers(tiny):
    """The load-balancing loss over real tokens (segment id ≠ 0) equals transformers' `aux_loss`
    with the same tokens as its attention mask."""
    _, directory, reference = tiny
    tokens = random_tokens(2, 19)
    segments = np.ones_like(tokens)
    segments[1, 13:] = 0  # padding at the end of row 1
    model = load_ours(directory)
    _, ours = nnx.jit(lambda m, t, s: m.hidden_states_and_router_loss(t, None, s))(
        model, jnp.asarray(tokens), jnp.asarray(segments))
    with torch.no_grad():
        out = reference(torch.as_tensor(tokens), attention_mask=torch.as_tensor(segments),
                        output_router_logits=True)
    np.testing.assert_allclose(float(ours), float(out.aux_loss), rtol=1e-5)


def test_export_round_trip(tiny, tmp_path):
    _, directory, reference = tiny
    reloaded = exported_and_reloaded(load_ours(directory), str(tmp_path))
    tokens = random_tokens()
    np.testing.assert_allclose(hf_logits(reloaded, tokens), hf_logits(reference, tokens), atol=1e-6, rtol=0)


@pytest.mark.parametrize("layers, step, mlp_only", [(4, 1, [0, 2]), (6, 2, []), (6, 3, [5]), (5, 2, [1, 4])])
def test_dense_layers_are_the_ones_transformers_makes_dense(layers, step, mlp_only):
    hf = transformers.Qwen3MoeConfig(num_hidden_layers=layers, decoder_sparse_step=step, mlp_only_layers=mlp_only,
                                     hidden_size=16, intermediate_size=8, moe_intermediate_size=4, num_experts=4, num_experts_per_tok=2,
                                     num_attention_heads=2, num_key_value_heads=1, vocab_size=8)
    reference = transformers.Qwen3MoeModel(hf)
    dense = tuple(i for i, layer in enumerate(reference.layers)
                  if isinstance(layer.mlp, transformers.models.qwen3_moe.modeling_qwen3_moe.Qwen3MoeMLP))
    assert 0 < len(dense) < layers
    config = ModelConfig.from_hf(hf.to_dict())
    assert config.dense_layers == dense
    assert ModelConfig.from_hf(config.to_hf()).dense_layers == dense  # what export writes reads back the same


def test_moe_config_without_experts_is_refused():
    config = transformers.Qwen3MoeConfig(num_hidden_layers=2).to_dict()
    config["num_experts"] = 0
    with pytest.raises(UnsupportedModelError, match="num_experts"):
        ModelConfig.from_hf(config)


def _write_mxfp4_checkpoint(directory, seed=0):
    """A tiny gpt-oss checkpoint whose expert matrices are stored as MXFP4 blocks and scales
    (random codes; exponents around 2^0), as the released gpt-oss checkpoints store them."""
    from safetensors.numpy import load_file, save_file

    save_tiny("gpt_oss", directory)
    tensors, rng = load_file(f"{directory}/model.safetensors"), np.random.RandomState(seed)
    for name in [n for n in tensors if n.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        experts, inputs, outputs = tensors.pop(name).shape
        tensors[name + "_blocks"] = rng.randint(0, 256, (experts, outputs, inputs // 32, 16)).astype(np.uint8)
        tensors[name + "_scales"] = rng.randint(122, 129, (experts, outputs, inputs // 32)).astype(np.uint8)
    save_file(tensors, f"{directory}/model.safetensors", metadata={"format": "pt"})
    with open(f"{directory}/config.json") as f:
        config = json.load(f)
    config["quantization_config"] = {"quant_method": "mxfp4"}
    with open(f"{directory}/config.json", "w") as f:
        json.dump(config, f)


def test_mxfp4_experts_match_transformers_dequantised(tmp_path):
    from ssd_jax.checkpoints.hf import hf_tensors

    _write_mxfp4_checkpoint(str(tmp_path))
    reference = transformers.GptOssForCausalLM.from_pretrained(
        str(tmp_path), quantization_config=transformers.Mxfp4Config(dequantize=True), dtype=torch.float32).eval()
    model = load_ours(str(tmp_path))
    ours = hf_tensors(model)
    expert_tensors = [n for n, _ in reference.named_parameters() if n.endswith(("gate_up_proj", "down_proj"))]
    assert len(expert_tensors) == 4
    for name, param in reference.named_parameters():
        if name in expert_tensors:
            np.testing.assert_array_equal(ours[name], param.detach().numpy(), err_msg=name)
    tokens = random_tokens(2, 21)
    np.testing.assert_allclose(np.asarray(forward(model, jnp.asarray(tokens))), hf_logits(reference, tokens),
                               atol=1e-4, rtol=0)
