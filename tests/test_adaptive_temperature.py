"""Adaptive temperature: the formula by hand, the filter and both draw paths, and the sampler
(the same compiled programs for any strengths, sampling log-probs equal to a recomputation)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssd_jax.checkpoints.load import load_model
from ssd_jax.sampling import Sampler, SampleRequest, filter_logits
from ssd_jax.sampling.adaptive import adaptive_temperature
from ssd_jax.sampling.choose import choose_tokens

NEW_TOKENS = 8
_filter, _choose = jax.jit(filter_logits), jax.jit(choose_tokens)


def test_temperature_by_hand():
    logits = jnp.log(jnp.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.2, 0.4, 0.4]]))
    temperatures = adaptive_temperature(logits, jnp.array([1.0, 0.7, 1.5]), jnp.array([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(temperatures, [1.0 * 0.2, 0.7 * 1.0, 1.5 * 1.2 ** 0.5], rtol=1e-5)
    off = adaptive_temperature(logits, jnp.array([0.8, 0.8, 0.8]), jnp.zeros(3))
    np.testing.assert_array_equal(off, np.full(3, 0.8, np.float32))


def test_filter_and_both_draw_paths_use_the_adaptive_temperature():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(6, 500)) * 3, jnp.float32)
    temperature, strength = jnp.full(6, 1.1), jnp.array([0.0, 0.5, 1.0, 2.0, 1.0, 3.0])
    top_k, top_p = jnp.array([20, 20, 20, 20, 0, 0]), jnp.full(6, 0.9)  # rows 4-5: the full-vocabulary path
    top1 = jax.nn.softmax(logits, axis=-1).max(-1)
    by_hand = 1.1 * (2 * (1 - top1)) ** strength
    adaptive, direct = _filter(logits, temperature, top_k, top_p, strength), _filter(logits, by_hand, top_k, top_p)
    np.testing.assert_array_equal(np.isfinite(adaptive), np.isfinite(direct))
    np.testing.assert_allclose(adaptive, direct, rtol=1e-5)
    np.testing.assert_array_equal(_filter(logits, temperature, top_k, top_p, jnp.zeros(6)),
                                  _filter(logits, temperature, top_k, top_p))
    uniforms = jnp.asarray(rng.uniform(size=6), jnp.float32)
    for top_k in (jnp.full(6, 20), top_k):  # candidates only; then a batch that takes the vocabulary path
        adaptive = _choose(logits, uniforms, temperature, top_k, top_p, strength)
        direct = _choose(logits, uniforms, by_hand, top_k, top_p)
        np.testing.assert_array_equal(adaptive.tokens, direct.tokens)
        np.testing.assert_allclose(adaptive.sampling_logprobs, direct.sampling_logprobs, atol=1e-6)


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny-random")


def _requests(loaded, strength, samples=3):
    text = loaded.chat_template.render([{"role": "user", "content": "square x"}])
    return [SampleRequest("p", i, text, 1.0, 20, 0.95, adaptive=strength) for i in range(samples)]


def test_sampler_strengths_share_the_programs_and_match_a_recomputation(loaded):
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    sampler = Sampler(loaded, max_new_tokens=NEW_TOKENS + 2, batch_size=4, seed=5)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        results = {0.0: sampler.generate(_requests(loaded, 0.0), progress=False)}
        first = len(compiles)  # the engine's programs (cache, layer slices, prefill, decode, copy)
        results.update({s: sampler.generate(_requests(loaded, s), progress=False) for s in (1.0, 3.0)})
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(compiles) == first, "a new strength is a per-slot value: it compiles nothing"

    plain = sampler.generate([dataclasses.replace(r, adaptive=0.0) for r in _requests(loaded, 0.0)], progress=False)
    assert [c.token_ids for c in plain] == [c.token_ids for c in results[0.0]]  # 0 is off, keys reproducible
    again = sampler.generate(_requests(loaded, 3.0)[::-1], progress=False)[::-1]
    assert [c.token_ids for c in again] == [c.token_ids for c in results[3.0]]

    prompt = sampler.prompt_token_ids(_requests(loaded, 3.0)[0].prompt_text)
    for completion in results[3.0]:
        logits = loaded.logits([prompt + completion.token_ids])[0, len(prompt) - 1 : len(prompt) - 1 + len(completion.token_ids)]
        rows = len(logits)
        top1 = np.asarray(jax.nn.softmax(logits.astype(np.float64), axis=-1)).max(-1)
        temperatures = 1.0 * (2 * (1 - top1)) ** 3.0
        filtered = np.asarray(_filter(logits, temperatures, jnp.full(rows, 20), jnp.full(rows, 0.95)))
        chosen = filtered[np.arange(rows), completion.token_ids]
        np.testing.assert_allclose(completion.sampling_logprobs, chosen, atol=1e-4)
    assert [c.sampling_logprobs for c in results[3.0]] != [c.sampling_logprobs for c in results[0.0]]


def test_evaluation_grid_runs_base_with_adaptive_decoding_beside_base_and_ssd(tmp_path):
    """`eval.adaptive` adds the base model again, with base's truncation, its strength on every request
    and record, and an identity of its own (so a store never mixes its samples with plain base's)."""
    from configs import base
    from ssd_jax.errors import ConfigError
    from ssd_jax.evaluation.evaluator import generate_missing
    from ssd_jax.evaluation.generation import Generated
    from ssd_jax.evaluation.jsonl_store import JsonlStore
    from ssd_jax.problems import load_benchmark
    from ssd_jax.stages.evaluate import models_from_config, settings_from_config

    config = base.get_config()
    config.workdir, config.model = str(tmp_path), "/ckpt/base"
    (tmp_path / "train" / "final").mkdir(parents=True)
    config.eval.adaptive = (1.5,)
    config.eval.base_top_k = 0
    config.eval.temperatures, config.eval.n_samples = (0.7, 1.0), 1
    models = models_from_config(config)
    assert [(m.name, m.ref, m.adaptive, m.top_k) for m in models] == [
        ("base", "/ckpt/base", 0.0, 0), ("base+adaptive1.5", "/ckpt/base", 1.5, 0),
        ("ssd", str(tmp_path / "train" / "final"), 0.0, None)]

    seen = []

    def generate(ref, requests):
        seen.extend((ref, r.temperature, r.top_k, r.adaptive) for r in requests)
        return [Generated("no code") for _ in requests]

    problems = load_benchmark("humaneval", None, limit=1)
    settings = settings_from_config(config)
    samples = generate_missing(JsonlStore(tmp_path / "samples.jsonl"), models, problems, settings, generate)
    assert sorted(set(seen)) == sorted({("/ckpt/base", t, 0, a) for t in (0.7, 1.0) for a in (0.0, 1.5)}
                                       | {(str(tmp_path / "train" / "final"), t, 20, 0.0) for t in (0.7, 1.0)})
    assert {(r["model"], r["adaptive"]) for r in samples.values()} == {("base", 0.0), ("base+adaptive1.5", 1.5),
                                                                         ("ssd", 0.0)}
    base_id, adaptive_id = settings.model_id(models[0]), settings.model_id(models[1])
    assert base_id != adaptive_id
    assert {(r["model"], r["model_id"]) for r in samples.values()} >= {("base", base_id),
                                                                         ("base+adaptive1.5", adaptive_id)}
    assert adaptive_id != settings.model_id(dataclasses.replace(models[1], adaptive=2.0))
    config.eval.adaptive = (0.0,)
    with pytest.raises(ConfigError, match="strengths must be > 0"):
        models_from_config(config)
