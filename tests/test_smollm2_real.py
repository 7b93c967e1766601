"""The real SmolLM2-135M-Instruct weights: our logits and greedy tokens equal transformers'.

transformers reads the same GGUF (dequantized to float32), so both run identical weights.
"""

import numpy as np
import pytest
import torch
import transformers

from ssd_jax import load_model
from ssd_jax.checkpoints.builtin import resolve_builtin

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


def test_continuous_batching_greedy_equals_transformers_generate(ours, reference):
    """Three prompts through two slots, eos on: the third starts mid-decode, when a slot frees."""
    from ssd_jax.sampling import Sampler, SampleRequest

    questions = ["Reply with the single word yes.", MESSAGES[1]["content"], "Write `add(a, b)` in Python."]
    prompts = [ours.chat_template.render([MESSAGES[0], {"role": "user", "content": q}], add_generation_prompt=True)
               for q in questions]
    sampler = Sampler(ours, max_new_tokens=GREEDY_TOKENS, batch_size=2, seed=0, prefill_chunk=32)
    completions = sampler.generate([SampleRequest(f"p{i}", 0, p, 0.0, 0, 1.0) for i, p in enumerate(prompts)],
                                   progress=False)
    lengths = []
    for prompt, completion in zip(prompts, completions):
        ids = ours.tokenizer.encode(prompt)
        with torch.no_grad():
            expected = reference.generate(torch.as_tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                          eos_token_id=list(sampler.eos_ids), pad_token_id=0)[0, len(ids):].tolist()
        drawn = completion.token_ids + ([expected[-1]] if completion.finish_reason == "eos" else [])
        assert drawn == expected, (completion.text, ours.tokenizer.decode(expected))
        lengths.append(len(drawn))
    assert len(set(lengths)) > 1 and sampler.last_run.decode_steps < sum(lengths), "slots finished apart and refilled"
