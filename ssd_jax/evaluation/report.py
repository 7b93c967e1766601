"""Turn graded samples into numbers: pass@k with bootstrap intervals, results.json, a
pass@1-vs-temperature plot, a printed table, and the base-vs-SSD comparison."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

KS = (1, 5)


# -- pass@k ------------------------------------------------------------------------------------
def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n samples, c of
    them correct, is correct: 1 - C(n-c, k) / C(n, k), in exact integer arithmetic."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    total = math.comb(n, k)
    return float(Fraction(total - math.comb(n - c, k), total))


def bootstrap_ci(per_problem: Sequence[float], confidence: float = 0.95, resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling problems with replacement."""
    values = np.asarray(per_problem, dtype=np.float64)
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one problem")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


@dataclasses.dataclass
class Cell:
    """All graded samples of one model at one temperature."""

    model: str
    ref: str
    temperature: float
    top_k: int
    top_p: float
    passes: dict[str, list[bool]] = dataclasses.field(default_factory=dict)  # problem id → per sample
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def _pass_at(counts: Mapping[str, tuple[int, int]], k: int, seed: int) -> dict | None:
    if not counts or any(n < k for n, _ in counts.values()):
        return None
    per_problem = [pass_at_k(n, c, k) for n, c in counts.values()]
    low, high = bootstrap_ci(per_problem, seed=seed)
    return {"value": sum(per_problem) / len(per_problem), "ci95": [low, high]}


def summarize(cell: Cell, difficulty: Mapping[str, str], seed: int = 0) -> dict:
    """pass@k (with a bootstrap 95% interval over problems), overall and per difficulty."""
    counts = {pid: (len(p), sum(p)) for pid, p in sorted(cell.passes.items())}
    samples = {n for n, _ in counts.values()}
    summary = {
        "temperature": cell.temperature, "top_k": cell.top_k, "top_p": cell.top_p,
        "n": samples.pop() if len(samples) == 1 else sorted(samples),
        "num_problems": len(counts),
        "per_problem_passes": {pid: c for pid, (_, c) in counts.items()},
        "statuses": dict(sorted(cell.statuses.items())),
    }
    for k in KS:
        summary[f"pass@{k}"] = _pass_at(counts, k, seed)
    groups = collections.defaultdict(dict)
    for pid, count in counts.items():
        groups[difficulty.get(pid) or "unknown"][pid] = count
    summary["per_difficulty"] = {
        name: {"num_problems": len(group), **{f"pass@{k}": _pass_at(group, k, seed) for k in KS}}
        for name, group in sorted(groups.items())
    }
    return summary


def build_results(cells: Sequence[Cell], difficulty: Mapping[str, str], info: Mapping, seed: int = 0) -> dict:
    """results.json's content: `info` (benchmark, sandbox, limits) plus per model and temperature."""
    models: dict[str, dict] = {}
    for cell in sorted(cells, key=lambda c: (c.model, c.temperature)):
        entry = models.setdefault(cell.model, {"ref": cell.ref, "temperatures": {}})
        entry["temperatures"][f"{cell.temperature:g}"] = summarize(cell, difficulty, seed)
    for entry in models.values():
        scored = [(s["pass@1"]["value"], s["temperature"]) for s in entry["temperatures"].values() if s["pass@1"]]
        if scored:
            best, temperature = max(scored)
            entry["best"] = {"temperature": temperature, "pass@1": best}
    return {**info, "models": models}


def _percent(metric: dict | None) -> str:
    if metric is None:
        return "-"
    low, high = metric["ci95"]
    return f"{100 * metric['value']:5.1f} [{100 * low:4.1f},{100 * high:5.1f}]"


def format_table(results: Mapping) -> str:
    """One row per model and temperature: n, pass@1 and pass@5 with 95% intervals, per difficulty."""
    difficulties = sorted({d for m in results["models"].values() for s in m["temperatures"].values()
                           for d in s["per_difficulty"]})
    if difficulties == ["unknown"]:  # a benchmark without difficulty labels (HumanEval)
        difficulties = []
    header = ["model", "T", "top_k", "top_p", "n", "problems", "pass@1 % [95% CI]", "pass@5 % [95% CI]"]
    header += [f"pass@1 {d}" for d in difficulties]
    rows = []
    for name, model in results["models"].items():
        for summary in model["temperatures"].values():
            per = summary["per_difficulty"]
            rows.append([name, f"{summary['temperature']:g}", str(summary["top_k"]), f"{summary['top_p']:g}",
                         str(summary["n"]), str(summary["num_problems"]), _percent(summary["pass@1"]),
                         _percent(summary["pass@5"])]
                        + [f"{100 * per[d]['pass@1']['value']:.1f}" if d in per and per[d]["pass@1"] else "-"
                           for d in difficulties])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header] + rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    sandbox = results.get("sandbox", {})
    if sandbox and not sandbox.get("sandboxed", True):
        lines.append("WARNING: programs ran WITHOUT isolation (allow_unsandboxed=True)")
    return "\n".join(lines)


def plot_pass_at_1(results: Mapping, path: str | Path) -> None:
    """pass@1 against temperature, one line per model, its 95% interval as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, model in results["models"].items():
        points = sorted((s["temperature"], s["pass@1"]) for s in model["temperatures"].values() if s["pass@1"])
        if not points:
            continue
        temperatures = [t for t, _ in points]
        axes.plot(temperatures, [100 * m["value"] for _, m in points], marker="o", label=name)
        axes.fill_between(temperatures, [100 * m["ci95"][0] for _, m in points],
                          [100 * m["ci95"][1] for _, m in points], alpha=0.2)
    axes.set_xlabel("evaluation temperature")
    axes.set_ylabel("pass@1 (%)")
    axes.set_title(f"pass@1 vs temperature — {results.get('benchmark', {}).get('name', '')}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(results: Mapping, workdir: str | Path) -> tuple[Path, Path]:
    """Writes results.json and pass_at_1.png into `workdir`; returns their paths."""
    workdir = Path(workdir)
    json_path, plot_path = workdir / "results.json", workdir / "pass_at_1.png"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    plot_pass_at_1(results, plot_path)
    return json_path, plot_path


# -- base vs SSD: each model at its best evaluation temperature, and the gain with a paired interval
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
