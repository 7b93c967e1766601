"""choose_tokens: each draw follows the filtered distribution exactly, on both computation paths."""

import jax
import jax.numpy as jnp
import numpy as np
from test_filter import reference_logprobs

from ssd_jax.sampling.choose import CANDIDATES, choose_tokens

FAST_ROWS = [(0.7, 5, 1.0), (1.3, 20, 0.8), (1.0, CANDIDATES, 0.95)]  # all served by the candidates
SLOW_ROWS = [(0.0, 0, 1.0), (1.1, 0, 0.9), (0.9, 0, 1.0)]  # top-k off: the batch takes the vocabulary path
GRID = (np.arange(1000) + 0.5) / 1000


def draw_grid(logits, params):
    """Every row of `logits [6, 300]` drawn once per uniform of GRID: tokens, model and sampling log-probs."""
    rows = len(params)
    t, k, p = (np.repeat(np.asarray(column), len(GRID)) for column in zip(*params))
    flat = jax.jit(choose_tokens)(
        jnp.asarray(np.repeat(logits, len(GRID), axis=0)), jnp.asarray(np.tile(GRID, rows), jnp.float32),
        jnp.asarray(t, jnp.float32), jnp.asarray(k, jnp.int32), jnp.asarray(p, jnp.float32),
    )
    return [np.asarray(x).reshape(rows, len(GRID)) for x in flat]


def test_draws_follow_the_filtered_distribution_on_both_paths():
    logits = np.random.default_rng(0).normal(0, 3, (6, 300)).astype(np.float32)
    fast_params, mixed_params = FAST_ROWS * 2, FAST_ROWS + SLOW_ROWS
    fast, mixed = draw_grid(logits, fast_params), draw_grid(logits, mixed_params)
    for (tokens, model_lp, sampling_lp), params in ((fast, fast_params), (mixed, mixed_params)):
        for r, (t, k, p) in enumerate(params):
            expected = np.exp(reference_logprobs(logits[r], t, k, p))
            frequency = np.bincount(tokens[r], minlength=logits.shape[1]) / len(GRID)
            assert np.all(frequency[expected == 0] == 0), "a filtered-out token was drawn"
            np.testing.assert_allclose(frequency, expected, atol=1 / len(GRID) + 1e-5)
            log_softmax = logits[r] - np.log(np.exp(logits[r].astype(np.float64)).sum())
            np.testing.assert_allclose(model_lp[r], log_softmax[tokens[r]], atol=1e-4)
            np.testing.assert_allclose(sampling_lp[r], np.log(expected[tokens[r]]), atol=1e-4)
    np.testing.assert_array_equal(fast[0][:3], mixed[0][:3], err_msg="a row's draw depends on the path")


def test_greedy_and_boundary_ties_resolve_like_the_filter():
    logits = np.random.default_rng(1).normal(0, 1, (6, 300)).astype(np.float32)
    logits[:3, [17, 90, 150]] = 5.0  # three tied maxima
    boundary_tie = logits.copy()
    boundary_tie[2, 20:80] = boundary_tie[2, 100:140] = 4.0  # 100 tokens tied at the 4th value: > candidates
    tied = [(0.0, 0, 1.0), (1.0, 2, 1.0)]
    cases = ((logits, tied + FAST_ROWS + [(0.5, 3, 1.0)]), (boundary_tie, tied + [(1.0, 4, 1.0)] + FAST_ROWS))
    for values, params in cases:
        tokens, _, _ = draw_grid(values, params)  # first all candidates, then forced onto the vocabulary
        assert set(tokens[0]) == {17}, "greedy takes the lowest id among equal maxima"
        assert set(tokens[1]) == {17, 90, 150}, "ties at the k-th value are all kept"
    expected = np.exp(reference_logprobs(boundary_tie[2], 1.0, 4, 1.0))
    assert np.count_nonzero(expected) == 103
    np.testing.assert_allclose(np.bincount(tokens[2], minlength=300) / len(GRID), expected, atol=1 / len(GRID))
