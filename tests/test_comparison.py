"""The base-vs-SSD summary picks each model's best temperature and a paired gain interval."""

import pytest

from ssd_jax.evaluation.report import compare, format_comparison


def _entry(temperature, passes, n=2):
    value = sum(c / n for c in passes.values()) / len(passes)
    return {"temperature": temperature, "n": n, "per_problem_passes": passes,
            "pass@1": {"value": value, "ci95": [value - 0.1, value + 0.1]}}


def _results():
    base = {"0.6": _entry(0.6, {"a": 1, "b": 0, "c": 0}), "0.8": _entry(0.8, {"a": 2, "b": 0, "c": 0})}
    ssd = {"1": _entry(1.0, {"a": 2, "b": 2, "c": 1}), "1.2": _entry(1.2, {"a": 0, "b": 0, "c": 0})}
    return {"models": {
        "base": {"temperatures": base, "best": {"temperature": 0.8, "pass@1": base["0.8"]["pass@1"]["value"]}},
        "ssd": {"temperatures": ssd, "best": {"temperature": 1.0, "pass@1": ssd["1"]["pass@1"]["value"]}},
    }}


def test_gain_is_the_difference_at_each_models_best_temperature():
    summary = compare(_results(), "base", "ssd")
    assert summary["base"]["temperature"] == 0.8 and summary["ssd"]["temperature"] == 1.0
    # per-problem pass@1: base (1, 0, 0), SSD (1, 1, 0.5) → gain 0.5
    assert summary["gain"]["value"] == pytest.approx(0.5)
    low, high = summary["gain"]["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    text = format_comparison(summary)
    assert "best T = 0.8" in text and "+50.0 points" in text
