"""PNG plots of a diagnostics result (`diagnostics.analyze`), one figure per question."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

PLOT_FILES = ("cumulative_mass.png", "surviving_tokens.png", "truncated_entropy.png",
              "entropy_by_top20_mass.png", "lock_fork.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def _lines(result: Mapping, field: str, x, xlabel: str, ylabel: str, title: str, path: str) -> str:
    figure, axes = _pyplot().subplots(figsize=(6.5, 4))
    for name, model in result["models"].items():
        axes.plot(x, model[field], marker="." if len(x) < 30 else None, label=name)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _bars(axes, labels: list[str], series: Mapping[str, list], ylabel: str, title: str) -> None:
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in values]
        axes.bar(np.arange(len(labels)) + index * width, heights, width, label=name)
    axes.set_xticks(np.arange(len(labels)) + width * (len(series) - 1) / 2, labels, fontsize=8)
    axes.set(ylabel=ylabel, title=title)
    axes.legend(fontsize=8)


def write_plots(result: Mapping, directory: str) -> list[str]:
    """Writes the five PNGs of `PLOT_FILES` into `directory`; returns their paths."""
    settings = result["settings"]
    truncation = f"top-k {settings['top_k']}, top-p {settings['top_p']}"
    temperatures = settings["temperatures"]
    ranks = np.arange(1, len(next(iter(result["models"].values()))["cumulative_mass"]) + 1)
    paths = [
        _lines(result, "cumulative_mass", ranks, "token rank", "mean cumulative probability",
               "Cumulative mass by rank (T = 1, untruncated)", os.path.join(directory, PLOT_FILES[0])),
        _lines(result, "surviving_tokens", temperatures, "evaluation temperature", "mean surviving tokens",
               f"Tokens surviving truncation ({truncation})", os.path.join(directory, PLOT_FILES[1])),
        _lines(result, "truncated_entropy", temperatures, "evaluation temperature", "mean entropy (nats)",
               f"Entropy after truncation ({truncation})", os.path.join(directory, PLOT_FILES[2])),
    ]
    models = result["models"]
    bins = [entry["bin"] for entry in next(iter(models.values()))["entropy_by_top20_mass"]]
    figure, axes = _pyplot().subplots(figsize=(7.5, 4))
    _bars(axes, bins, {name: [e["truncated_entropy"] for e in m["entropy_by_top20_mass"]] for name, m in models.items()},
          "mean truncated entropy (nats)",
          f"Entropy after truncation by top-20 mass (T = {settings['reference_temperature']:g})")
    axes.set_xlabel("mass of the top 20 tokens")
    paths.append(_save(figure, os.path.join(directory, PLOT_FILES[3])))

    figure, panels = _pyplot().subplots(1, 3, figsize=(11, 3.8))
    for axes, (cls, field, label) in zip(panels, (("lock", "top1", "top-1 mass at locks"),
                                                  ("lock", "tail_mass", "mass beyond top 20 at locks"),
                                                  ("fork", "truncated_entropy", "truncated entropy at forks"))):
        _bars(axes, [label], {name: [m["classes"][cls].get(field)] for name, m in models.items()}, "", label)
    figure.suptitle("Positions classified by the first model (" + ", ".join(
        f"{cls}: {next(iter(models.values()))['classes'][cls]['positions']}" for cls in ("lock", "fork")) + ")")
    paths.append(_save(figure, os.path.join(directory, PLOT_FILES[4])))
    return paths
