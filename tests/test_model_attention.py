"""The whole model with each attention implementation and remat policy still computes HF's logits
and gradients, at the tolerances of test_model_vs_hf.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hf_tiny import hf_logits, load_ours, save_tiny

from ssd_jax.checkpoints.hf import hf_tensors
from ssd_jax.models import blockwise_attention, self_attention


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("qwen3"))
    return directory, save_tiny("qwen3_untied", directory)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 16 queries × 8 keys, so a 37-token row spans several (and a partial one)."""
    small = functools.partial(blockwise_attention.blockwise_attention, block_q=16, block_k=8)
    monkeypatch.setattr(self_attention, "blockwise_attention", small)


@pytest.mark.parametrize("attention, remat", [("blockwise", "save_qkv"), ("blockwise", "save_dots")])
def test_logits_and_gradients_match_transformers(qwen3, small_blocks, attention, remat):
    directory, reference = qwen3
    tokens = np.random.RandomState(0).randint(0, 160, (2, 37)).astype(np.int32)
    model = load_ours(directory, attention=attention, remat=remat)
    logits = jax.jit(lambda m, t: m(t))(model, jnp.asarray(tokens))
    np.testing.assert_allclose(np.asarray(logits), hf_logits(reference, tokens), atol=1e-4, rtol=0)

    graphdef, params = nnx.split(model, nnx.Param)

    def next_token_loss(params):
        logits = nnx.merge(graphdef, params)(jnp.asarray(tokens[:, :-1]))
        return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], axis=-1))

    nnx.update(model, jax.jit(jax.grad(next_token_loss))(params))
    ours = {name: np.asarray(value) for name, value in hf_tensors(model).items()}
    reference.zero_grad()
    hf = reference(torch.as_tensor(tokens[:, :-1])).logits
    torch.nn.functional.cross_entropy(hf.flatten(0, 1), torch.as_tensor(tokens[:, 1:]).flatten().long()).backward()
    for name, param in reference.named_parameters():
        grad = param.grad.numpy()
        np.testing.assert_allclose(ours[name], grad, atol=1e-5 * np.abs(grad).max(), rtol=1e-3, err_msg=name)


def test_packed_rows_with_blockwise_equal_separate_runs(qwen3, small_blocks):
    directory, _ = qwen3
    model = load_ours(directory, attention="blockwise")
    lengths = [11, 17, 9]
    pieces = [np.random.RandomState(i).randint(0, 160, n).astype(np.int32) for i, n in enumerate(lengths)]
    segments = np.concatenate([np.full(n, i + 1) for i, n in enumerate(lengths)])[None]
    positions = np.concatenate([np.arange(n) for n in lengths])[None]
    forward = jax.jit(lambda m, *a: m(*a))
    logits = np.asarray(forward(model, jnp.asarray(np.concatenate(pieces)[None]), jnp.asarray(positions), jnp.asarray(segments)))
    start = 0
    for piece in pieces:
        alone = np.asarray(forward(model, jnp.asarray(piece[None])))
        np.testing.assert_allclose(logits[:, start:start + len(piece)], alone, atol=1e-5, rtol=0)
        start += len(piece)
