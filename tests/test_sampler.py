"""The sampler against transformers and full forward passes; keys, stops, budgets, compile count."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from ssd_jax.checkpoints.load import load_model
from ssd_jax.sampling import PromptTooLongError, Sampler, SampleRequest, filter_logits
from ssd_jax.sampling.loop import PAD_ID

NEW_TOKENS = 10


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny-random")


@pytest.fixture(scope="module")
def sampler(loaded):
    return Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7)


def chat(loaded, text: str) -> str:
    return loaded.chat_template.render([{"role": "user", "content": text}])


def requests(loaded, temperature=0.9, top_k=20, top_p=0.9, count=3, samples=2):
    """`count` prompts of 36, 40, 44 ... tokens (length buckets 40, 40, 48, ...), `samples` samples each."""
    return [
        SampleRequest(f"task-{i}", j, chat(loaded, "square " + "x" * (10 + 4 * i)), temperature, top_k, top_p)
        for i in range(count)
        for j in range(samples)
    ]


def test_greedy_tokens_match_transformers_generate(loaded, sampler, tmp_path):
    hf = transformers.AutoModelForCausalLM.from_pretrained(loaded.export_hf(str(tmp_path))).eval()
    reqs = requests(loaded, temperature=0.0, samples=1)
    for completion, request in zip(sampler.generate(reqs, progress=False), reqs):
        prompt = torch.tensor([sampler.prompt_token_ids(request.prompt_text)])
        with torch.no_grad():
            expected = hf.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None,
                                   pad_token_id=0)[0, prompt.shape[1]:].tolist()
        assert completion.token_ids == expected[: len(completion.token_ids)]
        if completion.finish_reason == "eos":
            assert expected[len(completion.token_ids)] in sampler.eos_ids
        else:
            assert completion.finish_reason == "length" and len(completion.token_ids) == NEW_TOKENS


def test_logprobs_match_a_full_forward_pass(loaded, sampler):
    reqs = requests(loaded, temperature=1.2, top_k=30, top_p=0.85)
    completions = sampler.generate(reqs, progress=False)
    prompts = [sampler.prompt_token_ids(r.prompt_text) for r in reqs]
    sequences = [p + c.token_ids for p, c in zip(prompts, completions)]
    padded = np.zeros((len(sequences), max(map(len, sequences))), np.int32)  # right padding: causal, harmless
    for row, ids in zip(padded, sequences):
        row[: len(ids)] = ids
    all_logits = loaded.logits(padded).astype(np.float64)
    steps = [logits[len(p) - 1 : len(p) - 1 + len(c.token_ids)]
             for p, c, logits in zip(prompts, completions, all_logits)]
    flat = np.concatenate(steps)
    rows = len(flat)
    filtered = np.asarray(jax.jit(filter_logits)(flat, jnp.full(rows, 1.2), jnp.full(rows, 30), jnp.full(rows, 0.85)))
    shifted = flat - flat.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    start = 0
    for completion, prompt in zip(completions, prompts):
        chosen = np.asarray(completion.token_ids)
        at = (start + np.arange(len(chosen)), chosen)
        np.testing.assert_allclose(completion.logprobs, log_softmax[at], atol=1e-4)
        np.testing.assert_allclose(completion.sampling_logprobs, filtered[at], atol=1e-4)
        start += len(chosen)
        assert completion.prompt_tokens == len(prompt)


def test_a_sample_does_not_depend_on_its_batch(loaded, sampler):
    target = requests(loaded, count=1, samples=1)[0]
    alone = sampler.generate([target], progress=False)[0]
    long_prompt = chat(loaded, "a longer prompt moves the batch to the next bucket " * 2)
    others = [dataclasses.replace(target, prompt_id=f"other-{i}", prompt_text=long_prompt) for i in range(3)]
    crowded = sampler.generate([*others, target], progress=False)[-1]  # last row, bucket 128 instead of 40
    assert alone.token_ids == crowded.token_ids
    np.testing.assert_allclose(alone.logprobs, crowded.logprobs, atol=1e-5)
    different = sampler.generate([dataclasses.replace(target, sample_index=1)], progress=False)[0]
    assert different.token_ids != alone.token_ids


def test_a_temperature_grid_compiles_one_program_pair(loaded):
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    grid_sampler = Sampler(loaded, max_new_tokens=NEW_TOKENS + 1, batch_size=4, seed=3)  # fresh programs
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for temperature in (0.2, 0.6, 1.0, 1.4, 1.8):
            grid_sampler.generate(requests(loaded, temperature=temperature, count=1, samples=4), progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(compiles) == 2, "one prefill and one decode program for the whole grid"


def test_stop_ids_eos_ids_and_stop_strings_end_a_row(loaded, sampler):
    request = requests(loaded, temperature=1.0, top_p=1.0, count=1, samples=1)[0]
    free = sampler.generate([request], progress=False)[0]
    stop_id = free.token_ids[3]
    first = free.token_ids.index(stop_id)

    stopped = Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7, stop_token_ids=[stop_id])
    completion = stopped.generate([request], progress=False)[0]
    assert completion.finish_reason == "stop" and completion.token_ids == free.token_ids[:first]

    eos_model = dataclasses.replace(loaded, eos_token_ids=(stop_id,))
    eos_sampler = Sampler(eos_model, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7)
    completion = eos_sampler.generate([request], progress=False)[0]
    assert completion.finish_reason == "eos" and completion.token_ids == free.token_ids[:first]
    assert len(completion.logprobs) == len(completion.sampling_logprobs) == first

    stop_string = free.text[2:4]
    with_string = Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7,
                          stop_strings=["\x00never", stop_string])
    completion = with_string.generate([request], progress=False)[0]
    cut = free.text.index(stop_string)
    assert completion.finish_reason == "stop" and completion.text == free.text[:cut]
    assert loaded.tokenizer.decode(completion.token_ids).startswith(free.text[: cut + len(stop_string)])
    assert not loaded.tokenizer.decode(completion.token_ids[:-1]).startswith(free.text[: cut + len(stop_string)])


def test_done_rows_emit_padding(loaded, sampler):
    from ssd_jax.sampling.batching import BatchRow, build_batch

    prompt = sampler.prompt_token_ids(chat(loaded, "x"))
    rows = [BatchRow("a", 0, prompt, 0.0, 0, 1.0, budget=3), BatchRow("b", 0, prompt, 0.0, 0, 1.0, budget=NEW_TOKENS)]
    batch = build_batch(rows, 4, 64, NEW_TOKENS)
    no_ids = np.full(8, -1, np.int32)
    out = sampler.programs.run(batch, 0, no_ids, no_ids)
    np.testing.assert_array_equal(out.num_tokens, [3, NEW_TOKENS, 0, 0])
    assert np.all(out.tokens[0, 3:] == PAD_ID) and np.all(out.tokens[0, :3] >= 0)
    assert np.all(out.tokens[2:] == PAD_ID)
    np.testing.assert_array_equal(out.tokens[0, :3], out.tokens[1, :3])


def test_context_limit_budgets_and_refuses_prompts(loaded):
    short_context = dataclasses.replace(loaded, config=loaded.config.replace(max_position_embeddings=66))
    limited = Sampler(short_context, max_new_tokens=NEW_TOKENS, batch_size=4, seed=0)
    prompt = "x" * 62  # the byte tokenizer: one token per character
    completion = limited.generate([SampleRequest("p", 0, prompt, 1.0, 0, 1.0)], progress=False)[0]
    assert len(completion.token_ids) + (completion.finish_reason != "length") <= 66 - 62
    with pytest.raises(PromptTooLongError, match="'long' has 66 tokens"):
        limited.generate([SampleRequest("long", 0, "x" * 66, 0.0, 0, 1.0)], progress=False)


def test_finished_rows_leave_the_batch_and_no_sample_changes(loaded):
    from ssd_jax.sampling.programs import CHECK_EVERY

    context, new_tokens = 128, 3 * CHECK_EVERY + 4
    short = dataclasses.replace(loaded, config=loaded.config.replace(max_position_embeddings=context))
    # The byte tokenizer gives one token per character: budgets 128 - length = 98, 86, ..., 14.
    requests = [SampleRequest(f"row-{i}", 0, "y" * (30 + 12 * i), 1.0, 20 * (i % 2), 0.9) for i in range(8)]
    batched = Sampler(short, max_new_tokens=new_tokens, batch_size=8, seed=11)
    sizes = []
    decode = batched.programs._decode

    def recording_decode(params, layer_params, cache, key_mask, inputs, state, *rest):
        sizes.append(state.done.shape[0])
        return decode(params, layer_params, cache, key_mask, inputs, state, *rest)

    batched.programs._decode = recording_decode
    together = batched.generate(requests, progress=False)
    assert sizes[0] == 8 and sizes[-1] < 8 and sizes == sorted(sizes, reverse=True), sizes

    alone = Sampler(short, max_new_tokens=new_tokens, batch_size=1, seed=11)
    for request, ours in zip(requests, together):
        reference = alone.generate([request], progress=False)[0]
        assert ours.token_ids == reference.token_ids, request.prompt_id
        assert ours.finish_reason == reference.finish_reason
        np.testing.assert_allclose(ours.logprobs, reference.logprobs, atol=1e-5)
    assert [len(c.token_ids) for c in together] != [new_tokens] * 8, "budgets differ, so rows finish apart"


def test_a_temperature_grid_shares_batches_and_keys(loaded, sampler):
    cold, hot = requests(loaded, temperature=0.3, count=2), requests(loaded, temperature=1.7, count=2)
    together = sampler.generate([*cold, *hot], progress=False)
    separately = sampler.generate(cold, progress=False) + sampler.generate(hot, progress=False)
    assert [c.token_ids for c in together] == [c.token_ids for c in separately]
    with pytest.raises(ValueError, match="repeat a"):
        sampler.generate([*cold, cold[0]], progress=False)
