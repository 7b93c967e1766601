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
from ssd_jax.sampling.scheduler import table_width
from ssd_jax.errors import ConfigError

NEW_TOKENS = 10


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny-random")


@pytest.fixture(scope="module")
def sampler(loaded):
    return Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7, kv_cache_pages=64)


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


def test_a_temperature_grid_compiles_once(loaded):
    """5 temperatures × n = 10 samples of one prompt: the programs compile once for the grid."""
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    grid_sampler = Sampler(loaded, max_new_tokens=NEW_TOKENS + 1, batch_size=8, seed=3)  # fresh programs
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        grid = [SampleRequest("grid", i, chat(loaded, "grid"), t, 20, 0.9)
                for t in (0.2, 0.6, 1.0, 1.4, 1.8) for i in range(10)]
        grid_sampler.generate(grid, progress=False)
        first = len(compiles)
        grid_sampler.generate([dataclasses.replace(r, temperature=r.temperature + 0.1) for r in grid],
                              progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    print(f"compiles for a 5-temperature grid with n = 10: {first}; for a second grid: {len(compiles) - first}")
    # At most: the cache's zeros, the weights' slicing, one prefill, one copy-on-write and one decode
    # program (the whole grid fits the smallest page-table width); fewer where an earlier sampler of the
    # same model compiled them already. Nothing more for a new grid.
    assert first <= 5 and len(compiles) == first, compiles


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


def test_context_limit_budgets_and_refuses_prompts(loaded):
    short_context = dataclasses.replace(loaded, config=loaded.config.replace(max_position_embeddings=66))
    limited = Sampler(short_context, max_new_tokens=NEW_TOKENS, batch_size=4, seed=0)
    prompt = "x" * 62  # the byte tokenizer: one token per character
    completion = limited.generate([SampleRequest("p", 0, prompt, 1.0, 0, 1.0)], progress=False)[0]
    assert len(completion.token_ids) + (completion.finish_reason != "length") <= 66 - 62
    with pytest.raises(PromptTooLongError, match="'long' has 66 tokens"):
        limited.generate([SampleRequest("long", 0, "x" * 66, 0.0, 0, 1.0)], progress=False)


def test_slots_refill_as_samples_finish_and_no_sample_changes(loaded):
    context, new_tokens = 128, 100
    short = dataclasses.replace(loaded, config=loaded.config.replace(max_position_embeddings=context))
    # The byte tokenizer gives one token per character: budgets 128 - length = 98, 86, ..., 14.
    requests = [SampleRequest(f"row-{i}", 0, "y" * (30 + 12 * i), 1.0, 20 * (i % 2), 0.9) for i in range(8)]
    batched = Sampler(short, max_new_tokens=new_tokens, batch_size=3, seed=11, page_size=8, prefill_chunk=16,
                      kv_cache_pages=64)
    together = batched.generate(requests, progress=False)
    stats = batched.last_run
    # 8 samples through 3 slots: the later ones start mid-decode, as earlier ones finish.
    assert stats.decode_steps < sum(len(c.token_ids) for c in together) / 2
    assert stats.prefill_chunks > len(requests), "prompts of 30-114 tokens prefill in chunks of 16"

    alone = Sampler(short, max_new_tokens=new_tokens, batch_size=1, seed=11, page_size=8, prefill_chunk=64,
                    kv_cache_pages=64)
    for request, ours in zip(requests, together):
        reference = alone.generate([request], progress=False)[0]
        assert ours.token_ids == reference.token_ids, request.prompt_id
        assert ours.finish_reason == reference.finish_reason
        np.testing.assert_allclose(ours.logprobs, reference.logprobs, atol=1e-5)
    assert len({len(c.token_ids) for c in together}) > 4, "budgets differ, so samples finish apart"


def test_a_run_larger_than_the_page_budget_completes_by_admission(loaded, sampler):
    reqs = requests(loaded, temperature=1.0, count=4, samples=3)  # 12 samples of ~36-48 + 10 tokens
    unlimited = sampler.generate(reqs, progress=False)
    page_size, budget = 8, 20  # each sample needs 6-8 pages with its prompt; 12 of them need ~80
    small = Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7, page_size=page_size,
                    kv_cache_pages=budget)
    limited = small.generate(reqs, progress=False)
    assert [c.token_ids for c in limited] == [c.token_ids for c in unlimited]
    stats = small.last_run
    print(f"peak pages {stats.peak_pages} of a {budget}-page budget; live slots {stats.live_fraction:.0%}")
    assert stats.pages == budget and 0 < stats.peak_pages <= budget, stats
    assert stats.live_fraction < 1.0, "pages, not slots, held samples back"

    with pytest.raises(ConfigError, match="needs 7 KV cache pages .* holds 6; raise kv_cache_pages"):
        Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=4, seed=7, page_size=page_size,
                kv_cache_pages=6).generate(reqs[:1], progress=False)


def test_samples_of_a_prompt_share_its_prefill(loaded, sampler):
    # 43 prompt tokens: the shared prefix (42 tokens) ends inside a page of 16, so every sample
    # copies that page before its first write (copy-on-write).
    prompt = chat(loaded, "share " + "z" * 15)
    assert (len(sampler.prompt_token_ids(prompt)) - 1) % 16
    grid = [SampleRequest("shared", i, prompt, t, 20, 0.9) for t in (0.5, 1.3) for i in range(4)]
    together = sampler.generate(grid, progress=False)
    assert sampler.last_run.prompt_prefills == 1
    for request, ours in zip(grid, together):
        alone = sampler.generate([request], progress=False)[0]
        assert sampler.last_run.prompt_prefills == 1
        assert ours.token_ids == alone.token_ids
        np.testing.assert_allclose(ours.logprobs, alone.logprobs, atol=1e-5)
    assert len({tuple(c.token_ids) for c in together}) == len(grid)
    # An independent truth for the shared pages: each sample's log-probs under a full forward pass.
    prompt_ids = sampler.prompt_token_ids(prompt)
    for completion in together:
        logits = loaded.logits(np.asarray([prompt_ids + completion.token_ids]))[0].astype(np.float64)
        steps = logits[len(prompt_ids) - 1 : -1]
        log_softmax = steps - steps.max(-1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
        expected = log_softmax[np.arange(len(completion.token_ids)), completion.token_ids]
        np.testing.assert_allclose(completion.logprobs, expected, atol=1e-4)


def test_a_temperature_grid_shares_batches_and_keys(loaded, sampler):
    cold, hot = requests(loaded, temperature=0.3, count=2), requests(loaded, temperature=1.7, count=2)
    together = sampler.generate([*cold, *hot], progress=False)
    separately = sampler.generate(cold, progress=False) + sampler.generate(hot, progress=False)
    assert [c.token_ids for c in together] == [c.token_ids for c in separately]
    with pytest.raises(ValueError, match="repeat a"):
        sampler.generate([*cold, cold[0]], progress=False)


def test_the_default_pool_holds_every_slot_at_the_longest_sample_and_no_more(loaded):
    # Context 64, pages of 8: a sample whose prompt ends mid-page needs 8 pages for its 63
    # positions plus the prompt's copied-on-write page. The default pool rounds slots × 9 up to
    # a power of two only while that stays within every slot at the longest sample.
    short = dataclasses.replace(loaded, config=loaded.config.replace(max_position_embeddings=64))
    sampler = Sampler(short, max_new_tokens=1000, batch_size=4, seed=3, page_size=8)
    prompt = "y" * 42
    assert (len(sampler.prompt_token_ids(prompt)) - 1) % 8
    completion = sampler.generate([SampleRequest("p", 0, prompt, 0.0, 0, 1.0)], progress=False)[0]
    assert len(completion.token_ids) + len(sampler.prompt_token_ids(prompt)) <= 64
    assert sampler.engine.num_pages - 1 == sampler.slots * 9


def test_an_attention_that_reads_only_live_pages_gets_one_table_width(loaded, monkeypatch):
    """With the TPU kernel (which reads only live pages) every decode step takes the run's widest
    page table, so the decode program compiles once; completions are the same as with tables
    bounded by the live pages at each step (the gather path's)."""
    reqs = requests(loaded, temperature=0.0, samples=1, count=3)
    bounded = Sampler(loaded, max_new_tokens=40, batch_size=2, seed=1, page_size=4, kv_cache_pages=64)
    expected = bounded.generate(reqs, progress=False)
    fixed = Sampler(loaded, max_new_tokens=40, batch_size=2, seed=1, page_size=4, kv_cache_pages=64)
    fixed.generate(reqs[:1], progress=False)  # builds the engine
    fixed.engine.reads_only_live_pages = True
    widths, decode = set(), fixed.engine.decode
    monkeypatch.setattr(fixed.engine, "decode", lambda inputs, table, seed: widths.add(table.shape[-1]) or
                        decode(inputs, table, seed))
    assert [c.token_ids for c in fixed.generate(reqs, progress=False)] == [c.token_ids for c in expected]
    longest = max(len(fixed.prompt_token_ids(r.prompt_text)) for r in reqs) + 40 - 1
    assert widths == {table_width(-(-longest // 4))}, widths
    bounded_widths = set()
    decode_b = bounded.engine.decode
    monkeypatch.setattr(bounded.engine, "decode", lambda inputs, table, seed: bounded_widths.add(table.shape[-1]) or
                        decode_b(inputs, table, seed))
    bounded.generate(reqs, progress=False)
    assert len(bounded_widths) > 1, bounded_widths  # the gather path's tables grow with the live pages


def test_only_a_kernel_that_attends_every_layer_gets_one_table_width(loaded):
    """The kernel serves 128-lane heads without sinks or windows; anything else attends through
    the gather path on TPU too, whose cost grows with the table's width."""
    from ssd_jax.sampling.engine import kernel_attends_every_layer

    qwen3_4b_like = loaded.config.replace(num_heads=32, num_kv_heads=8, head_dim=128, dtype="bfloat16")
    assert kernel_attends_every_layer(qwen3_4b_like, loaded.mesh)
    assert not kernel_attends_every_layer(qwen3_4b_like.replace(attention_sinks=True), loaded.mesh)
    windows = (128, 0) * (qwen3_4b_like.num_layers // 2) + (0,) * (qwen3_4b_like.num_layers % 2)
    assert not kernel_attends_every_layer(qwen3_4b_like.replace(layer_windows=windows), loaded.mesh)
    assert not kernel_attends_every_layer(qwen3_4b_like.replace(head_dim=64), loaded.mesh)  # SmolLM2-135M's
