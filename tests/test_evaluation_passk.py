"""pass@k against brute-force enumeration, and the bootstrap interval."""

import itertools

import numpy as np
import pytest

from ssd_jax.evaluation import pass_at_k
from ssd_jax.evaluation.report import bootstrap_ci


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration_over_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-15)


def test_pass_at_k_is_exact_for_large_n():
    # 1 - C(190, 10) / C(200, 10) with exact integers; the product form agrees to float precision.
    product = 1.0 - np.prod([1.0 - 10 / i for i in range(191, 201)])
    assert pass_at_k(200, 10, 10) == pytest.approx(product, rel=1e-12)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError, match="pass_at_k needs"):
        pass_at_k(n, c, k)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_problems():
    rng = np.random.default_rng(1)
    small = rng.random(20)
    large = rng.random(2000)
    low, high = bootstrap_ci(small, seed=3)
    assert low < small.mean() < high
    assert bootstrap_ci(small, seed=3) == (low, high)  # seeded: reproducible
    low_large, high_large = bootstrap_ci(large, seed=3)
    assert high_large - low_large < (high - low) / 4
    assert bootstrap_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)
