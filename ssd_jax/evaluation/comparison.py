"""Base vs SSD: each model at its best evaluation temperature, and the gain with a paired interval."""

from __future__ import annotations

from collections.abc import Mapping

from ssd_jax.evaluation.passk import bootstrap_ci, pass_at_k


def best_temperature(results: Mapping, model: str) -> dict:
    """The temperature with the highest pass@1 for `model`, with its pass@1 summary."""
    entry = results["models"][model]
    if "best" not in entry:
        raise ValueError(f"results have no pass@1 for model {model!r}")
    key = f"{entry['best']['temperature']:g}"
    return entry["temperatures"][key]


def compare(results: Mapping, base: str, ssd: str, seed: int = 0) -> dict:
    """Best-temperature pass@1 of both models and the gain, with a 95% interval from a paired
    bootstrap over problems (each problem's pass@1 difference at the two best temperatures)."""
    base_best, ssd_best = best_temperature(results, base), best_temperature(results, ssd)
    n_base, n_ssd = base_best["n"], ssd_best["n"]
    per_problem = []
    for problem, ssd_passes in ssd_best["per_problem_passes"].items():
        base_passes = base_best["per_problem_passes"][problem]
        per_problem.append(pass_at_k(n_ssd, ssd_passes, 1) - pass_at_k(n_base, base_passes, 1))
    low, high = bootstrap_ci(per_problem, seed=seed)
    return {
        "base": {"model": base, "temperature": base_best["temperature"], "pass@1": base_best["pass@1"]},
        "ssd": {"model": ssd, "temperature": ssd_best["temperature"], "pass@1": ssd_best["pass@1"]},
        "gain": {"value": sum(per_problem) / len(per_problem), "ci95": [low, high]},
        "num_problems": len(per_problem),
    }


def format_comparison(summary: Mapping) -> str:
    def line(role: str) -> str:
        entry = summary[role]
        low, high = entry["pass@1"]["ci95"]
        return (f"{role:>4} ({entry['model']}): best T = {entry['temperature']:g}, pass@1 = "
                f"{100 * entry['pass@1']['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]")

    gain = summary["gain"]
    low, high = gain["ci95"]
    return "\n".join([
        line("base"), line("ssd"),
        f"gain: {100 * gain['value']:+.1f} points, 95% CI [{100 * low:+.1f}, {100 * high:+.1f}] "
        f"(paired bootstrap over {summary['num_problems']} problems)",
    ])
