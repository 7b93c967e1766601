"""Run the evaluation stage described by a run config (configs/base.py, its `eval` section).

Fields read — top level: `workdir` (outputs go to `<workdir>/eval/`), `model` (the base
model), `seed`, `dtype`, `mesh`. From `eval`:
  include_base                the base model, named "base"; the model named "base" samples with
                              base_top_k/base_top_p (-1 = same as top_k/top_p)
  include_ssd                 this run's SSD model, named "ssd": `<workdir>/train/final`
  models                      extra `ref` or `name=ref` strings
  benchmark.name              humaneval | livecodebench
  benchmark.path              LiveCodeBench directory or files; "" = HumanEval's packaged file
  benchmark.release_version, .window ("" | v5 | v6), .start_date, .end_date (YYYY-MM-DD, ""),
  .difficulties, .platforms (optional), .limit (0 = all)
  temperatures, top_k, top_p, n_samples, max_new_tokens, batch_size
  system_message              None = LiveCodeBench's, "" = none
  workers (0 = one per core), allow_unsandboxed
  grading.*                   per_test_timeout_s, per_sample_timeout_s, memory_mb, max_processes,
                              max_file_mb, max_output_mb (GradingLimits; omitted = defaults)
  rescore, chunk_size         optional: re-grade saved samples; requests per generation call
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from ssd_jax.evaluation.benchmarks import load_benchmark
from ssd_jax.evaluation.evaluator import EvalSettings, ModelSpec, evaluate
from ssd_jax.evaluation.generation import GenerateFn, sampler_generate_fn
from ssd_jax.evaluation.grading import GradingLimits
from ssd_jax.evaluation.prompts import SYSTEM_MESSAGE_GENERIC
from ssd_jax.reading import reading

BASE_NAME, SSD_NAME = "base", "ssd"
_LCB_FILTERS = ("release_version", "window", "start_date", "end_date", "difficulties", "platforms")


def _get(section: Mapping, name: str, default=None):
    value = section.get(name, default)
    return default if value is None else value


def eval_workdir(config: Mapping) -> str:
    return os.path.join(config["workdir"], "eval")


def settings_from_config(config: Mapping) -> EvalSettings:
    section = config["eval"]
    grading = {k: v for k, v in dict(_get(section, "grading", {})).items() if v is not None}
    unknown = set(grading) - set(GradingLimits.__dataclass_fields__)
    if unknown:
        raise ValueError(f"config.eval.grading has unknown fields {sorted(unknown)}; "
                         f"known: {sorted(GradingLimits.__dataclass_fields__)}")
    temperatures = tuple(float(t) for t in _get(section, "temperatures", ()))
    if not temperatures:
        raise ValueError("config.eval.temperatures is empty: give the evaluation temperatures, e.g. (0.6, 0.8, 1.0)")
    system_message = section.get("system_message")
    return EvalSettings(
        temperatures=temperatures, top_k=int(_get(section, "top_k", 20)), top_p=float(_get(section, "top_p", 0.8)),
        n_samples=int(_get(section, "n_samples", 10)),
        system_message=SYSTEM_MESSAGE_GENERIC if system_message is None else (system_message or None),
        grading=GradingLimits(**grading), workers=int(_get(section, "workers", 0)) or None,
        allow_unsandboxed=bool(_get(section, "allow_unsandboxed", False)),
        chunk_size=int(_get(section, "chunk_size", 512)), rescore=bool(_get(section, "rescore", False)),
        seed=int(_get(config, "seed", 0)),
    )


def models_from_config(config: Mapping) -> list[ModelSpec]:
    """base (if include_base), ssd (if include_ssd: the trained `<workdir>/train/final`), extras."""
    section = config["eval"]
    models = []
    if _get(section, "include_base", True):
        if not config.get("model"):
            raise ValueError("config.model is empty but eval.include_base is set: name the base model")
        models.append(ModelSpec(BASE_NAME, config["model"]))
    if _get(section, "include_ssd", True):
        final = os.path.join(config["workdir"], "train", "final")
        if not os.path.isdir(final):
            raise FileNotFoundError(f"eval.include_ssd is set but {final} does not exist: train first "
                                    f"(launch/train.py) or set --config.eval.include_ssd=False")
        models.append(ModelSpec(SSD_NAME, final))
    return models + [ModelSpec.parse(str(ref)) for ref in _get(section, "models", ())]


def _checked(models: list[ModelSpec | str], section: Mapping) -> list[ModelSpec]:
    """ModelSpecs with distinct names; the one named `base` samples with base_top_k/base_top_p."""
    models = [m if isinstance(m, ModelSpec) else ModelSpec.parse(str(m)) for m in models]
    if not models:
        raise ValueError("nothing to evaluate: set eval.include_base, eval.include_ssd or eval.models")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ, got {names}; name extras as name=ref")
    top_k, top_p = int(_get(section, "base_top_k", -1)), float(_get(section, "base_top_p", -1.0))
    return [dataclasses.replace(m, top_k=top_k if top_k >= 0 else m.top_k, top_p=top_p if top_p >= 0 else m.top_p)
            if m.name == BASE_NAME else m for m in models]


def evaluate_from_config(config: Mapping, models: list[ModelSpec | str] | None = None, workdir: str | None = None,
                         generate_fn: GenerateFn | None = None) -> dict:
    """Loads the benchmark, builds the grid and runs it into `workdir` (default
    `<workdir>/eval/`); returns the results dict. `models` (ModelSpecs or `name=ref` strings)
    replaces the config's base/ssd/extras."""
    if not config.get("workdir"):
        raise ValueError("config.workdir is empty: say where the run's outputs go")
    section = config["eval"]
    benchmark = dict(_get(section, "benchmark", {}))
    name = benchmark.pop("name", None)
    if not name:
        raise ValueError("config.eval.benchmark.name is empty: humaneval or livecodebench")
    path, limit = benchmark.pop("path", None) or None, int(benchmark.pop("limit", 0) or 0)
    filters = {k: v for k, v in benchmark.items() if k in _LCB_FILTERS and v not in (None, "", ())}
    if name != "livecodebench":  # the base config's LiveCodeBench defaults mean nothing elsewhere
        filters = {}
    with reading("eval.benchmark.path", path, "fix the file, or point config.eval.benchmark.path at a good copy"):
        problems = load_benchmark(name, path, limit=limit or None, **filters)
    settings = settings_from_config(config)
    models = _checked(models if models is not None else models_from_config(config), section)
    generate_fn = generate_fn or sampler_generate_fn(
        max_new_tokens=int(_get(section, "max_new_tokens", 1024)), batch_size=int(_get(section, "batch_size", 32)),
        seed=settings.seed, dtype=str(_get(config, "dtype", "float32")), mesh_axes=dict(_get(config, "mesh", {})))
    info = {"name": name, "path": path, "filters": filters, "limit": limit}
    return evaluate(workdir or eval_workdir(config), models, problems, settings, generate_fn, info)
