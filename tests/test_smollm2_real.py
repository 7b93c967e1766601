"""The real SmolLM2-135M-Instruct weights: our logits and greedy tokens equal transformers'.

transformers reads the same GGUF (dequantized to float32), so both run identical weights.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from ssd_jax import load_model
from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.models import init_cache

GREEDY_TOKENS = 32
MESSAGES = [
    {"role": "system", "content": "You are a helpful coding assistant. Answer with Python code in a markdown block."},
    {"role": "user", "content": "Write a function `is_even(n)` that returns True when n is even."},
]


@pytest.fixture(scope="module")
def ours():
    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def reference():
    path = resolve_builtin("smollm2-135m-instruct")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="module")
def prompt_ids(ours):
    return ours.tokenizer.encode(ours.chat_template.render(MESSAGES, add_generation_prompt=True))


def test_logits_match_on_a_chat_formatted_coding_prompt(ours, reference, prompt_ids):
    ids = np.asarray([prompt_ids])
    with torch.no_grad():
        expected = reference(torch.as_tensor(ids)).logits.numpy()
    got = ours.logits(ids)
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=0)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


@nnx.jit
def _step(model, tokens, positions, cache, write_index, key_mask):
    return model.forward_cached(tokens, positions, cache, write_index, key_mask)


def test_greedy_decode_with_cache_equals_transformers_generate(ours, reference, prompt_ids):
    length = len(prompt_ids)
    max_len = length + GREEDY_TOKENS
    slots = jnp.arange(max_len)[None]
    cache = init_cache(ours.config, 1, max_len)
    logits, cache = _step(
        ours.model, jnp.asarray([prompt_ids]), slots[:, :length], cache, jnp.int32(0), slots < length
    )
    generated = []
    for t in range(length, max_len):
        token = int(jnp.argmax(logits[0, -1]))
        generated.append(token)
        logits, cache = _step(
            ours.model, jnp.asarray([[token]]), slots[:, t : t + 1], cache, jnp.int32(t), slots <= t
        )
    with torch.no_grad():
        expected = reference.generate(
            torch.as_tensor([prompt_ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
            eos_token_id=None, pad_token_id=0,
        )[0, length:].tolist()
    assert generated == expected, (ours.tokenizer.decode(generated), ours.tokenizer.decode(expected))
