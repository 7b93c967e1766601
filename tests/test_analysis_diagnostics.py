"""Distribution diagnostics against hand-computed values and the sampler's own filter."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from settings_from_config import analysis_settings

from ssd_jax.analysis import contexts as contexts_lib
from ssd_jax.analysis import diagnostics, distributions
from ssd_jax.checkpoints.load import load_model
from ssd_jax.errors import InputError
from ssd_jax.parallel import make_mesh
from ssd_jax.sampling import filter_logits

_filter = jax.jit(filter_logits)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-random")


def _stats(logits, temperatures, top_k, top_p, max_rank=256, reference=1.0):
    logits = jnp.asarray(logits, jnp.float32)
    out = distributions.batch_statistics(logits, jnp.ones(logits.shape[0], bool), jnp.asarray(temperatures, jnp.float32),
                                         jnp.float32(reference), top_k=top_k, top_p=top_p, max_rank=max_rank)
    return jax.device_get(out)


def _entropy(p):
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_one_distribution_by_hand():
    probs = np.array([0.5, 0.2, 0.12, 0.08, 0.05, 0.03, 0.015, 0.005])
    out = _stats(np.log(probs)[None], [1.0, 2.0], top_k=0, top_p=0.8)
    np.testing.assert_allclose(out["cumulative_mass"], np.cumsum(probs), rtol=1e-5)
    # T = 1: mass above each token 0, .5, .7, .82 -> three survive (.5, .2, .12).
    assert out["surviving"][0] == 3
    assert out["truncated_entropy"][0] == pytest.approx(_entropy(np.array([0.5, 0.2, 0.12]) / 0.82), rel=1e-5)
    # T = 2: sqrt(p) renormalised = .298, .188, .146, .119, .094, ...; the mass above the 5th token
    # is .751 < .8 and above the 6th .846 -> five survive.
    tempered = np.sqrt(probs) / np.sqrt(probs).sum()
    assert np.cumsum(tempered)[3] < 0.8 <= np.cumsum(tempered)[4]
    assert out["surviving"][1] == 5
    assert out["truncated_entropy"][1] == pytest.approx(_entropy(tempered[:5] / tempered[:5].sum()), rel=1e-5)
    assert out["top1"][0] == pytest.approx(0.5) and out["entropy"][0] == pytest.approx(_entropy(probs), rel=1e-5)
    assert out["reference_entropy"][0] == pytest.approx(out["truncated_entropy"][0], rel=1e-6)


@pytest.mark.parametrize("top_k,top_p", [(20, 0.8), (0, 0.95)])
def test_counts_and_entropies_match_the_samplers_filter(top_k, top_p):
    logits = np.random.default_rng(top_k).normal(size=(16, 300)).astype(np.float32) * 2.5
    temperatures = [0.4, 0.7, 1.0, 1.6, 2.0]
    out = _stats(logits, temperatures, top_k=top_k, top_p=top_p)
    assert not out["saturated"].any()
    for t, temperature in enumerate(temperatures):
        rows = logits.shape[0]
        logprobs = np.asarray(_filter(logits, jnp.full(rows, temperature), jnp.full(rows, top_k, jnp.int32),
                                            jnp.full(rows, top_p)), np.float64)
        kept = np.isfinite(logprobs)
        assert out["surviving"][t] == kept.sum()
        entropies = [_entropy(np.exp(row[np.isfinite(row)])) for row in logprobs]
        assert out["truncated_entropy"][t] == pytest.approx(sum(entropies), rel=1e-4)


def test_survivors_beyond_max_rank_are_flagged():
    logits = np.zeros((3, 100), np.float32)  # uniform: top-p 0.95 keeps 95 tokens
    out = _stats(logits, [1.0], top_k=0, top_p=0.95, max_rank=32)
    assert out["saturated"][0] == 3 and out["surviving"][0] == 3 * 32


def test_top20_bins():
    assert distributions.top20_bin([0.9995, 0.999, 0.997, 0.991, 0.985, 0.96, 0.5]).tolist() == [0, 0, 1, 2, 3, 4, 5]
    assert len(distributions.top20_bin_labels()) == 6


def test_lock_fork_rule():
    rule = analysis_settings().rule  # configs/base.py's thresholds
    classes = rule.classify(np.array([0.9, 0.75, 0.6, 0.3, 0.3]), np.array([0.1, 2.0, 1.0, 1.0, 0.5]))
    assert classes.tolist() == [1, 1, 0, 2, 0]


def test_contexts_from_jsonl_and_bad_rows(tmp_path, tiny):
    model = tiny
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt_text": "ab", "completion": "cde"}) + "\n")
    (context,) = contexts_lib.read_contexts(str(path), model.tokenizer)
    assert context.prompt_ids == tuple(model.tokenizer.encode("ab"))
    assert context.response_ids == tuple(model.tokenizer.encode("cde"))
    path.write_text(json.dumps({"prompt_text": "ab"}) + "\n")
    with pytest.raises(InputError, match="samples.jsonl:1 lacks string field.*completion"):
        contexts_lib.read_contexts(str(path), model.tokenizer)


def test_analysis_of_a_tiny_model_matches_brute_force_and_the_sharded_run(tiny):
    """Every statistic from one forward pass per batch equals a position-by-position computation
    on the model's full logits; 8 devices sharing the batch give the same figures."""
    model = tiny
    rng = np.random.default_rng(0)
    contexts = [contexts_lib.Context(str(i), tuple(rng.integers(0, 250, 3 + i).tolist()),
                                     tuple(rng.integers(0, 250, 9 - i).tolist())) for i in range(6)]
    temperatures = (0.5, 1.0, 1.5)
    settings = analysis_settings(temperatures=temperatures, top_k=20, top_p=0.8, batch_size=8)
    result = diagnostics.analyze([("base", "tiny-random")], lambda ref: model, contexts, settings)["models"]["base"]

    rows, top1, counts, entropies = [], [], np.zeros(3), np.zeros(3)
    for context in contexts:
        logits = model.logits([list(context.prompt_ids + context.response_ids)])[0]
        # the distributions that predict response tokens 0 .. R-1 sit at positions P-1 .. P+R-2
        positions = list(range(len(context.prompt_ids) - 1, len(context.prompt_ids) + len(context.response_ids) - 1))
        rows.append(logits[positions])
    logits = np.concatenate(rows)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1), np.float64)
    sorted_probs = -np.sort(-probs, axis=-1)
    for t, temperature in enumerate(temperatures):
        n = len(logits)
        lp = np.asarray(_filter(logits, jnp.full(n, temperature), jnp.full(n, 20, jnp.int32), jnp.full(n, 0.8)))
        counts[t] = np.isfinite(lp).sum() / n
        entropies[t] = np.mean([_entropy(np.exp(row[np.isfinite(row)])) for row in lp])
    assert result["positions"] == len(logits)
    np.testing.assert_allclose(result["cumulative_mass"], np.cumsum(sorted_probs, -1)[:, :60].mean(0), rtol=1e-4)
    np.testing.assert_allclose(result["surviving_tokens"], counts, rtol=1e-6)
    np.testing.assert_allclose(result["truncated_entropy"], entropies, rtol=1e-4)
    lock = sorted_probs[:, 0] >= 0.75
    assert result["classes"]["lock"]["positions"] == lock.sum()

    sharded = load_model("tiny-random", mesh=make_mesh(data=8, fsdp=1, model=1))
    again = diagnostics.analyze([("base", "tiny-random")], lambda ref: sharded, contexts, settings)["models"]["base"]
    np.testing.assert_allclose(again["truncated_entropy"], result["truncated_entropy"], rtol=1e-5)
    np.testing.assert_allclose(again["surviving_tokens"], result["surviving_tokens"], rtol=1e-6)


def test_launcher_writes_json_and_plots(tmp_path):
    import subprocess
    import sys

    samples = tmp_path / "samples.jsonl"
    with samples.open("w") as f:
        for i in range(3):
            f.write(json.dumps({"id": str(i), "prompt_text": f"prompt {i}", "completion": "x = 1\nprint(x)"}) + "\n")
    config = tmp_path / "config.py"
    config.write_text(
        "from configs import base\n\n\ndef get_config():\n    c = base.get_config()\n"
        "    c.analysis.models = ('base=tiny-random', 'again=tiny-random')\n"
        f"    c.analysis.samples = {str(samples)!r}\n    c.analysis.out_dir = {str(tmp_path / 'out')!r}\n"
        "    c.analysis.batch_size = 1\n    c.analysis.temperatures = (0.5, 1.0)\n    return c\n")
    run = subprocess.run([sys.executable, "launch/analyze.py", f"--config={config}"], capture_output=True, text=True,
                         env={**__import__("os").environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert list(result["models"]) == ["base", "again"]
    assert result["changes"]["again"]["lock"]["top1"] in (None, 0.0)  # the same model twice changes nothing
    for name in ("cumulative_mass.png", "surviving_tokens.png", "truncated_entropy.png",
                 "entropy_by_top20_mass.png", "lock_fork.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    assert "again vs base" in run.stdout
