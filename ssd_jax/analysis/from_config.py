"""`launch/analyze.py`'s work: read `config.analysis`, run the diagnostics, write JSON and plots.

Fields (documented in configs/base.py): `analysis.models` (`name=ref` entries; empty = the run's
base model as `base` and, when it exists, its SSD model `<workdir>/train/final` as `ssd`; the
first classifies locks and forks), `analysis.samples` (a sample shard directory or a JSONL file;
"" = `<workdir>/samples`), `limit`, `max_response_tokens`, `batch_size`, `temperatures`,
`top_k` / `top_p` (-1 = `eval.top_k` / `eval.top_p`), `reference_temperature`, `max_rank`, the
lock/fork thresholds, and `out_dir` ("" = `<workdir>/analysis`). Uses the top-level `model`,
`dtype`, `workdir`, and `sampling.model_parallel` (the mesh is the sampler's: this host's
devices, `model_parallel` per replica, the rest split the batch).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping

import jax

from ssd_jax.analysis.contexts import read_contexts
from ssd_jax.analysis.diagnostics import AnalysisSettings, LockForkRule, analyze
from ssd_jax.analysis.plots import write_plots
from ssd_jax.errors import ConfigError


def _model_list(config: Mapping) -> list[tuple[str, str]]:
    section = config.analysis
    if section.models:
        models = []
        for entry in section.models:
            name, sep, ref = str(entry).partition("=")
            if not sep or not name or not ref:
                raise ConfigError(f"config.analysis.models entry {entry!r} must be name=ref, e.g. base=smollm2-135m-instruct")
            models.append((name, ref))
        names = [n for n, _ in models]
        if len(set(names)) != len(names):
            raise ConfigError(f"config.analysis.models repeats a name: {names}")
        return models
    models = [("base", config.model)]
    final = os.path.join(config.workdir, "train", "final")
    if os.path.isdir(final):
        models.append(("ssd", final))
    return models


def settings_from_config(config: Mapping) -> AnalysisSettings:
    section = config.analysis
    top_k = config.eval.top_k if section.top_k < 0 else section.top_k
    top_p = config.eval.top_p if section.top_p < 0 else section.top_p
    temperatures = tuple(float(t) for t in section.temperatures)
    if not temperatures or min(temperatures) <= 0:
        raise ConfigError(f"config.analysis.temperatures={section.temperatures} must be non-empty and positive")
    return AnalysisSettings(
        temperatures=temperatures, top_k=int(top_k), top_p=float(top_p),
        reference_temperature=float(section.reference_temperature), batch_size=int(section.batch_size),
        max_rank=int(section.max_rank),
        rule=LockForkRule(float(section.lock_min_top1), float(section.fork_max_top1), float(section.fork_min_entropy)),
    )


def analyze_from_config(config: Mapping) -> dict:
    """Runs the diagnostics the config describes; writes `analysis.json` and the plots; returns the result."""
    from ssd_jax.checkpoints.load import load_model
    from ssd_jax.parallel import make_mesh

    section = config.analysis
    settings = settings_from_config(config)
    models = _model_list(config)
    mesh = make_mesh(data=-1, fsdp=1, model=int(config.sampling.model_parallel), devices=jax.local_devices())
    out_dir = section.out_dir or os.path.join(config.workdir, "analysis")
    samples = section.samples or os.path.join(config.workdir, "samples")
    os.makedirs(out_dir, exist_ok=True)

    loaded_first = load_model(models[0][1], dtype=config.dtype, mesh=mesh)
    contexts = read_contexts(samples, loaded_first.tokenizer, limit=int(section.limit),
                             max_response_tokens=int(section.max_response_tokens))
    logging.info("analysis: %d responses, %d positions, models %s", len(contexts),
                 sum(len(c.response_ids) for c in contexts), ", ".join(n for n, _ in models))

    def load(ref):
        return loaded_first if ref == models[0][1] else load_model(ref, dtype=config.dtype, mesh=mesh)

    result = analyze(models, load, contexts, settings, progress=True)
    result["settings"]["samples"] = samples
    with open(os.path.join(out_dir, "analysis.json"), "w") as f:
        json.dump(result, f, indent=2)
    result["plots"] = write_plots(result, out_dir)
    return result


def summary_lines(result: Mapping) -> list[str]:
    """A short printed table: per model, lock / fork counts and class means; changes against the first."""
    lines = []
    for name, model in result["models"].items():
        lock, fork = model["classes"]["lock"], model["classes"]["fork"]
        lines.append(f"{name}: {model['positions']} positions; locks {lock['positions']} (top-1 "
                     f"{lock.get('top1', float('nan')):.4f}, tail beyond top 20 {lock.get('tail_mass', float('nan')):.2e}); "
                     f"forks {fork['positions']} (truncated entropy {fork.get('truncated_entropy', float('nan')):.3f} nats)")
    for name, change in result.get("changes", {}).items():
        lines.append(f"{name} vs {next(iter(result['models']))}: {json.dumps(change)}")
    return lines
