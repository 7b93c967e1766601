"""Run an evaluation described by an ml_collections config (what launch/evaluate.py passes in).

Fields read (defaults in brackets):
  workdir                     where samples.jsonl, verdicts.jsonl, results.json, pass_at_1.png go
  model / models              one checkpoint reference, or a list of `ref` / `name=ref` strings
                              (`models` wins when non-empty); e.g. base and SSD checkpoints
  seed [0]                    sampling seed (keys derive from seed, problem id, sample index)
  benchmark.name              livecodebench | humaneval
  benchmark.path [None]       code_generation_lite directory or files; HumanEval.jsonl(.gz)
  benchmark.release_version [release_v6], benchmark.window [None: v5 | v6],
  benchmark.start_date / end_date [None, YYYY-MM-DD], benchmark.difficulties [()],
  benchmark.platforms [()], benchmark.limit [0 = all]            LiveCodeBench filters
  temperatures                list of evaluation temperatures
  top_k [20], top_p [0.8], n_samples [10], max_new_tokens [4096], batch_size [32], dtype [float32]
  system_message [LiveCodeBench's]; "" sends no system message
  grading.per_test_timeout_s [6], grading.per_sample_timeout_s [None: LCB's bound],
  grading.memory_mb [4096], grading.max_processes [64], grading.max_file_mb [64],
  grading.max_output_mb [32]  sandbox limits per sample
  workers [0 = one per core], allow_unsandboxed [False], rescore [False], chunk_size [512]
"""

from __future__ import annotations

from collections.abc import Mapping

from ssd_jax.evaluation.benchmarks import load_benchmark
from ssd_jax.evaluation.evaluator import EvalSettings, ModelSpec, evaluate
from ssd_jax.evaluation.generation import GenerateFn, sampler_generate_fn
from ssd_jax.evaluation.grading import GradingLimits
from ssd_jax.evaluation.prompts import SYSTEM_MESSAGE_GENERIC

_LCB_FILTERS = ("release_version", "window", "start_date", "end_date", "difficulties", "platforms")


def _get(config: Mapping, name: str, default=None):
    value = config.get(name, default)
    return default if value is None else value


def settings_from_config(config: Mapping) -> EvalSettings:
    grading = dict(_get(config, "grading", {}))
    unknown = set(grading) - set(GradingLimits.__dataclass_fields__)
    if unknown:
        raise ValueError(f"config.grading has unknown fields {sorted(unknown)}; known: {sorted(GradingLimits.__dataclass_fields__)}")
    temperatures = tuple(float(t) for t in _get(config, "temperatures", ()))
    if not temperatures:
        raise ValueError("config.temperatures is empty: give the evaluation temperatures, e.g. [0.6, 0.8, 1.0]")
    system_message = config.get("system_message", SYSTEM_MESSAGE_GENERIC)
    return EvalSettings(
        temperatures=temperatures, top_k=int(_get(config, "top_k", 20)), top_p=float(_get(config, "top_p", 0.8)),
        n_samples=int(_get(config, "n_samples", 10)), system_message=system_message or None,
        grading=GradingLimits(**grading), workers=int(_get(config, "workers", 0)) or None,
        allow_unsandboxed=bool(_get(config, "allow_unsandboxed", False)),
        chunk_size=int(_get(config, "chunk_size", 512)), rescore=bool(_get(config, "rescore", False)),
        seed=int(_get(config, "seed", 0)),
    )


def models_from_config(config: Mapping) -> list[ModelSpec]:
    refs = list(_get(config, "models", ())) or ([config["model"]] if config.get("model") else [])
    if not refs:
        raise ValueError("config needs `model` (a checkpoint reference) or `models` (a list of refs / name=ref)")
    return [ModelSpec.parse(str(ref)) for ref in refs]


def evaluate_from_config(config: Mapping, generate_fn: GenerateFn | None = None) -> dict:
    """Loads the benchmark, builds the grid and runs it; returns the results dict."""
    if not config.get("workdir"):
        raise ValueError("config.workdir is empty: say where the evaluation's outputs go")
    benchmark = dict(_get(config, "benchmark", {}))
    name = benchmark.pop("name", None)
    if not name:
        raise ValueError("config.benchmark.name is empty: livecodebench or humaneval")
    path, limit = benchmark.pop("path", None), int(benchmark.pop("limit", 0) or 0)
    filters = {k: v for k, v in benchmark.items() if k in _LCB_FILTERS and v not in (None, "", ())}
    problems = load_benchmark(name, path, limit=limit or None, **filters)
    settings = settings_from_config(config)
    generate_fn = generate_fn or sampler_generate_fn(
        max_new_tokens=int(_get(config, "max_new_tokens", 4096)), batch_size=int(_get(config, "batch_size", 32)),
        seed=settings.seed, dtype=str(_get(config, "dtype", "float32")))
    info = {"name": name, "path": None if path is None else str(path), "filters": filters, "limit": limit}
    return evaluate(config["workdir"], models_from_config(config), problems, settings, generate_fn, info)
