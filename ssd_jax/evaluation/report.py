"""Turn graded samples into numbers: pass@k with bootstrap intervals, results.json, a
pass@1-vs-temperature plot, a printed table, and the base-vs-SSD comparison."""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from etils import epath

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


# -- the headline: pass@1 at a temperature that was not chosen on the problems it is scored on ----
HEADLINE_RULES = ("split", "fixed")


def split_halves(problem_ids: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """The problems cut in two at random (seeded): the first half chooses, the second scores."""
    ids = sorted(problem_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    half = len(ids) // 2
    return sorted(ids[i] for i in order[:half]), sorted(ids[i] for i in order[half:])


def _mean_pass_at_1(summary: Mapping, problem_ids: Sequence[str]) -> float:
    n, passes = summary["n"], summary["per_problem_passes"]
    return float(np.mean([pass_at_k(n, passes[pid], 1) for pid in problem_ids]))


def headline(entry: Mapping, rule: Mapping, seed: int = 0) -> dict | None:
    """A model's headline pass@1. `fixed`: at `rule["temperature"]` (the paper's evaluation T,
    Table 3) on every problem. `split`: T chosen on one half of the problems, pass@1 scored on
    the other half. None when the rule cannot be met (fewer than 2 problems to split)."""
    temperatures = entry["temperatures"]
    if rule["mode"] == "fixed":
        key = f"{rule['temperature']:g}"
        if key not in temperatures:
            raise ValueError(f"the headline temperature {key} is not in the evaluation grid {sorted(temperatures)}; "
                             "add it to config.eval.temperatures")
        chosen, select, score = temperatures[key], [], sorted(temperatures[key]["per_problem_passes"])
    elif rule["mode"] == "split":
        any_summary = next(iter(temperatures.values()))
        select, score = split_halves(list(any_summary["per_problem_passes"]), seed)
        if not select or isinstance(any_summary["n"], list):
            return None
        chosen = max(temperatures.values(), key=lambda s: (_mean_pass_at_1(s, select), -s["temperature"]))
    else:
        raise ValueError(f"config.eval.headline={rule['mode']!r}: choose one of {HEADLINE_RULES}")
    passes = {pid: chosen["per_problem_passes"][pid] for pid in score}
    return {
        "rule": rule["mode"], "temperature": chosen["temperature"], "n": chosen["n"],
        "chosen_on_problems": len(select), "num_problems": len(score), "per_problem_passes": passes,
        "pass@1": _pass_at({pid: (chosen["n"], c) for pid, c in passes.items()}, 1, seed),
    }


def checkpoint_table(models: Mapping[str, Mapping]) -> list[dict] | None:
    """The SSD model's headline pass@1 at every evaluated checkpoint (`ssd@<step>`, then the final
    `ssd`), the best one marked; None when no checkpoint besides the final one was evaluated."""
    rows = [{"model": name, "step": int(name.split("@", 1)[1]) if "@" in name else "final",
             "temperature": entry["headline"]["temperature"], "pass@1": entry["headline"]["pass@1"]["value"]}
            for name, entry in models.items()
            if (name == "ssd" or name.startswith("ssd@")) and entry.get("headline") and entry["headline"]["pass@1"]]
    if not any(row["step"] != "final" for row in rows):
        return None
    rows.sort(key=lambda row: (row["step"] == "final", row["step"] if row["step"] != "final" else 0))
    best = max(rows, key=lambda row: row["pass@1"])
    for row in rows:
        row["best"] = row is best
    return rows


def build_results(cells: Sequence[Cell], difficulty: Mapping[str, str], info: Mapping, seed: int = 0,
                  headline_rules: Mapping[str, Mapping] | None = None) -> dict:
    """results.json's content: `info` (benchmark, sandbox, limits) plus per model and temperature;
    with `headline_rules` (model → rule, see `headline`) each model's headline pass@1, and the
    per-checkpoint table when checkpoints were evaluated."""
    models: dict[str, dict] = {}
    for cell in sorted(cells, key=lambda c: (c.model, c.temperature)):
        entry = models.setdefault(cell.model, {"ref": cell.ref, "temperatures": {}})
        entry["temperatures"][f"{cell.temperature:g}"] = summarize(cell, difficulty, seed)
    for entry in models.values():
        scored = [(s["pass@1"]["value"], s["temperature"]) for s in entry["temperatures"].values() if s["pass@1"]]
        if scored:
            best, temperature = max(scored)
            entry["best"] = {"temperature": temperature, "pass@1": best}  # in-sample: for the curve only
    for name, entry in models.items():
        if headline_rules and name in headline_rules:
            entry["headline"] = headline(entry, headline_rules[name], seed)
    results = {**info, "models": models}
    checkpoints = checkpoint_table(models)
    if checkpoints:
        results["checkpoints"] = checkpoints
    return results


def _headline_how(entry: Mapping) -> str:
    if entry["rule"] == "fixed":
        return f"T = {entry['temperature']:g} fixed in advance, on all {entry['num_problems']} problems"
    return (f"T = {entry['temperature']:g} chosen on {entry['chosen_on_problems']} problems, "
            f"scored on the other {entry['num_problems']}")


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
    if "grader" in results:
        lines.append(f"prompt style: {results.get('prompt_style')}, grader: {results['grader']}")
    for name, model in results["models"].items():
        if model.get("headline") and model["headline"]["pass@1"]:
            lines.append(f"headline {name}: pass@1 {_percent(model['headline']['pass@1'])} "
                         f"({_headline_how(model['headline'])})")
    for row in results.get("checkpoints", ()):
        lines.append(f"checkpoint {row['step']}: pass@1 {100 * row['pass@1']:.1f} at T = {row['temperature']:g}"
                     + ("  <- best (chosen on the problems it is scored on)" if row["best"] else ""))
    sandbox = results.get("sandbox", {})
    if sandbox and not sandbox.get("sandboxed", True):
        lines.append("WARNING: programs ran WITHOUT isolation (allow_unsandboxed=True)")
    return "\n".join(lines)


def plot_pass_at_1(results: Mapping, path: str | epath.PathLike) -> None:
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
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    epath.Path(path).write_bytes(image.getvalue())  # local or gs://


def write_report(results: Mapping, workdir: str | epath.PathLike) -> tuple[epath.Path, epath.Path]:
    """Writes results.json and pass_at_1.png into `workdir` (local or gs://); returns their paths."""
    workdir = epath.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
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


def _compared(results: Mapping, model: str) -> dict:
    """The entry compare() reads for `model`: its headline when the results hold one (T not
    chosen on the problems it is scored on), else its best temperature, marked in-sample."""
    entry = results["models"][model]
    if entry.get("headline"):
        return entry["headline"]
    return {**best_temperature(results, model), "rule": "in-sample"}


def compare(results: Mapping, base: str, ssd: str, seed: int = 0) -> dict:
    """Headline pass@1 of both models and the gain, with a 95% interval from a paired bootstrap
    over the problems both were scored on (each problem's pass@1 difference at the two
    temperatures). Without headlines, each model's best temperature, reported as in-sample."""
    base_best, ssd_best = _compared(results, base), _compared(results, ssd)
    n_base, n_ssd = base_best["n"], ssd_best["n"]
    per_problem = []
    for problem, ssd_passes in ssd_best["per_problem_passes"].items():
        base_passes = base_best["per_problem_passes"][problem]
        per_problem.append(pass_at_k(n_ssd, ssd_passes, 1) - pass_at_k(n_base, base_passes, 1))
    low, high = bootstrap_ci(per_problem, seed=seed)
    return {
        "base": {"model": base, "temperature": base_best["temperature"], "pass@1": base_best["pass@1"],
                 "rule": base_best["rule"]},
        "ssd": {"model": ssd, "temperature": ssd_best["temperature"], "pass@1": ssd_best["pass@1"],
                "rule": ssd_best["rule"]},
        "gain": {"value": sum(per_problem) / len(per_problem), "ci95": [low, high]},
        "num_problems": len(per_problem),
    }


def format_comparison(summary: Mapping) -> str:
    def line(role: str) -> str:
        entry = summary[role]
        low, high = entry["pass@1"]["ci95"]
        temperature = f"{entry['temperature']:g}"
        how = {"fixed": f"T = {temperature} fixed in advance",
               "split": f"T = {temperature} chosen on the other half of the problems"}.get(
            entry.get("rule"), f"best T = {temperature}, chosen on the problems it is scored on")
        return (f"{role:>4} ({entry['model']}): {how}, pass@1 = "
                f"{100 * entry['pass@1']['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]")

    gain = summary["gain"]
    low, high = gain["ci95"]
    return "\n".join([
        line("base"), line("ssd"),
        f"gain: {100 * gain['value']:+.1f} points, 95% CI [{100 * low:+.1f}, {100 * high:+.1f}] "
        f"(paired bootstrap over {summary['num_problems']} problems)",
    ])
