"""filter_logits against a direct NumPy statement of the rules, against HF's warpers, and against an
independent NumPy statement of vLLM's rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ssd_jax.sampling import filter_logits


def reference_logprobs(row: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """The documented rules, stated directly (no sorting, no cumulative sums)."""
    row = row.astype(np.float64)
    if temperature <= 1e-5:
        out = np.full_like(row, -np.inf)
        out[np.argmax(row)] = 0.0
        return out
    x = row / temperature
    keep = np.isfinite(x) | (x == -np.inf)
    if 0 < top_k < len(x):
        keep &= x >= np.sort(x)[::-1][top_k - 1]
    if top_p < 1.0:  # the top-p decision in float32, like the implementation's softmax
        x32 = x.astype(np.float32)
        probs = np.where(keep, np.exp(x32 - x32[keep].max()), np.float32(0.0))
        probs /= probs.sum()
        mass_more_likely = (probs[None, :] > probs[:, None]).astype(np.float32) @ probs
        keep &= (mass_more_likely < top_p) | (x == x.max())
    z = np.where(keep, x, -np.inf)
    return z - (z.max() + np.log(np.exp(z - z.max()).sum()))


def hf_logprobs(row: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    scores = torch.from_numpy(row[None].astype(np.float32))
    scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k > 0:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.log_softmax(scores, dim=-1)[0].numpy()


def vllm_logprobs(row: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """vLLM's rule (its sampler's `apply_top_k_top_p`), stated in NumPy: divide by T, sort ascending,
    remove values below the k-th largest, then over the softmax of the survivors remove every token
    whose ascending cumulative sum is <= 1 - p, except the last (most likely) token."""
    x = row.astype(np.float64) / temperature
    order = np.argsort(x, kind="stable")
    ascending = x[order]
    if 0 < top_k < len(x):
        ascending = np.where(ascending < ascending[len(x) - top_k], -np.inf, ascending)
    if top_p < 1.0:
        probs = np.exp(ascending - ascending.max())
        removed = np.cumsum(probs / probs.sum()) <= 1 - top_p
        removed[-1] = False
        ascending = np.where(removed, -np.inf, ascending)
    z = np.empty_like(x)
    z[order] = ascending
    return z - (z.max() + np.log(np.exp(z - z.max()).sum()))


def run_filter(logits, temperature, top_k, top_p) -> np.ndarray:
    return np.asarray(
        jax.jit(filter_logits)(
            jnp.asarray(logits, jnp.float32),
            jnp.asarray(temperature, jnp.float32),
            jnp.asarray(top_k, jnp.int32),
            jnp.asarray(top_p, jnp.float32),
        )
    )


def assert_same_distribution(actual: np.ndarray, expected: np.ndarray, atol: float = 2e-5):
    np.testing.assert_array_equal(np.isfinite(actual), np.isfinite(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], atol=atol)


MIXED_PARAMS = [  # (temperature, top_k, top_p), one row each, all in one batch
    (1.0, 0, 1.0),
    (0.7, 20, 0.8),
    (1.6, 20, 0.8),
    (1.1, 0, 0.95),
    (0.6, 5, 1.0),
    (1e-6, 20, 0.8),
    (1.0, 1, 1.0),
    (2.0, 300, 0.5),
    (0.9, 0, 0.3),
    (1.2, 50, 0.0),
    (3.0, 2, 0.99),
    (0.5, 1000, 0.9),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_rows_match_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(len(MIXED_PARAMS), 257)).astype(np.float32)
    temperature, top_k, top_p = map(np.array, zip(*MIXED_PARAMS))
    actual = run_filter(logits, temperature, top_k, top_p)
    for row, params in enumerate(MIXED_PARAMS):
        assert_same_distribution(actual[row], reference_logprobs(logits[row], *params))


def test_matches_hf_warper_chain_on_random_logits():
    rng = np.random.default_rng(7)
    params = [p for p in MIXED_PARAMS if p[0] > 1e-5 and p[2] > 0.0]
    logits = rng.normal(scale=2.0, size=(len(params), 4096)).astype(np.float32)
    temperature, top_k, top_p = map(np.array, zip(*params))
    actual = run_filter(logits, temperature, top_k, top_p)
    for row, row_params in enumerate(params):
        assert_same_distribution(actual[row], hf_logprobs(logits[row], *row_params), atol=1e-4)


def test_matches_vllms_rule_on_random_logits():
    """Without ties (continuous random logits) the kept set and the log-probs are vLLM's."""
    rng = np.random.default_rng(11)
    params = [p for p in MIXED_PARAMS if p[0] > 1e-5]
    logits = rng.normal(scale=2.0, size=(len(params), 4096)).astype(np.float32)
    temperature, top_k, top_p = map(np.array, zip(*params))
    actual = run_filter(logits, temperature, top_k, top_p)
    for row, row_params in enumerate(params):
        assert_same_distribution(actual[row], vllm_logprobs(logits[row], *row_params), atol=1e-4)


def test_top_k_keeps_every_token_tied_with_the_kth_value():
    logits = np.array([[3.0, 2.0, 2.0, 2.0, 1.0]])
    actual = run_filter(logits, [1.0], [2], [1.0])
    survivors = np.array([3.0, 2.0, 2.0, 2.0])
    expected = np.append(survivors - np.log(np.exp(survivors).sum()), -np.inf)
    assert_same_distribution(actual[0], expected)
    assert_same_distribution(actual[0], hf_logprobs(logits[0], 1.0, 2, 1.0))


def exact_logits(probs: list[float]) -> np.ndarray:
    """Logits whose float32 softmax is exactly `probs` (dyadic probabilities)."""
    logits = np.log(np.array([probs], np.float32))
    assert np.array_equal(np.asarray(jax.nn.softmax(logits)), np.exp(logits))
    return logits


@pytest.mark.parametrize(
    "top_p, kept",
    [(0.0, 1), (0.5, 1), (0.50001, 2), (0.875, 2), (0.87501, 3), (1.0, 3)],
)
def test_top_p_exact_cumulative_boundary(top_p, kept):
    """probs 1/2, 3/8, 1/8: a token survives iff the mass of the tokens more likely than it
    is < p, so p = 0.875 drops the last token and p = 0.5 keeps only the first — as in HF."""
    logits = exact_logits([0.5, 0.375, 0.125])
    actual = run_filter(logits, [1.0], [0], [top_p])[0]
    assert np.isfinite(actual).sum() == kept
    assert_same_distribution(actual, reference_logprobs(logits[0], 1.0, 0, top_p))
    if top_p > 0.0:
        assert_same_distribution(actual, hf_logprobs(logits[0], 1.0, 0, top_p))


@pytest.mark.parametrize("top_p, kept", [(0.75, 2), (0.75001, 4)])
def test_top_p_tied_tokens_share_one_fate(top_p, kept):
    """probs 1/2, 1/4, 1/8, 1/8: the two 1/8 tokens are dropped or kept together (HF, whose
    sort is unstable, keeps one of them at p = 0.75001)."""
    logits = exact_logits([0.5, 0.25, 0.125, 0.125])
    actual = run_filter(logits, [1.0], [0], [top_p])[0]
    assert np.isfinite(actual).sum() == kept
    assert_same_distribution(actual, reference_logprobs(logits[0], 1.0, 0, top_p))


def test_signed_zeros_and_extreme_values_are_ordered_as_floats():
    logits = np.array([[0.0, -0.0, -1.0, -1e30, 1e30, -np.inf]], np.float32)
    for top_k in range(1, 7):
        actual = run_filter(logits, [1.0], [top_k], [1.0])[0]
        assert_same_distribution(actual, reference_logprobs(logits[0], 1.0, top_k, 1.0))
    assert np.isfinite(run_filter(logits, [1.0], [2], [1.0])[0]).tolist() == [1, 1, 0, 0, 1, 0]


def test_top_k_larger_than_vocab_is_off():
    logits = np.array([[0.1, -2.0, 1.5, 0.3, 0.0]], np.float32)
    actual = run_filter(logits, [1.0], [10], [1.0])
    assert_same_distribution(actual[0], np.asarray(jax.nn.log_softmax(logits[0])))


def test_tiny_temperature_is_one_hot_on_first_argmax():
    logits = np.array([[0.5, 2.0, -1.0, 2.0]], np.float32)
    actual = run_filter(logits, [1e-6], [0], [1.0])[0]
    np.testing.assert_array_equal(actual, [-np.inf, 0.0, -np.inf, -np.inf])


def test_top_k_one_keeps_only_the_argmax():
    logits = np.random.default_rng(3).normal(size=(1, 100)).astype(np.float32)
    actual = run_filter(logits, [1.3], [1], [0.9])[0]
    assert np.isfinite(actual).sum() == 1
    assert actual[np.argmax(logits)] == 0.0


def test_negative_infinity_logits_stay_removed():
    logits = np.array([[1.0, -np.inf, 0.0, -np.inf]], np.float32)
    actual = run_filter(logits, [1.0], [3], [1.0])[0]
    assert_same_distribution(actual, reference_logprobs(logits[0], 1.0, 3, 1.0))
    assert np.isfinite(actual).sum() == 2


def test_parameter_grid_does_not_recompile():
    jitted = jax.jit(filter_logits)
    logits = jnp.zeros((2, 16))
    sizes = []
    for temperature, top_k, top_p in ((0.5, 0, 1.0), (1.0, 20, 0.8), (1e-6, 5, 0.95)):
        jitted(
            logits,
            jnp.full((2,), temperature, jnp.float32),
            jnp.full((2,), top_k, jnp.int32),
            jnp.full((2,), top_p, jnp.float32),
        )
        sizes.append(jitted._cache_size())
    assert sizes[1:] == sizes[:1] * 2

