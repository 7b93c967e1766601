"""Stage `evaluate` (SSD stage 3): pass@k of the base and SSD models over a temperature grid.

Fields read once (configs/base.py documents them): `workdir`, `model` (the base model, named
"base", sampling with `eval.base_top_k/base_top_p`; -1 = the grid's), `seed`, `dtype`,
`sampling.model_parallel` and the `eval` section: `include_base`, `adaptive` (strengths `a` > 0:
each adds the base model again as "base+adaptive<a>", with base's truncation and the
per-position temperature of `ssd_jax.sampling.adaptive`), `include_ssd` (this run's
`<workdir>/train/final`, named "ssd"), `models` (extra `ref` or `name=ref`), `benchmark.*`,
`temperatures`, `top_k`, `top_p`, `n_samples`, `max_new_tokens`, `max_total_tokens` (prompt +
response, 0 = the model's context), `batch_size`, `prompt_style` (livecodebench | ml-ssd),
`system_message` (livecodebench style: None = LiveCodeBench's, "" = none),
`chat_template_kwargs`, `grader` (robust | livecodebench: how stdin programs run, inside the
sandbox either way), `checkpoints` (final | all: also `ssd@<step>` for every checkpoint model
`train.checkpoint_models` exported), `headline` (split | fixed) with `headline_temperature` and
`base_headline_temperature`, `workers`, `allow_unsandboxed`, `model_parallel` and `expert_parallel`
(0 = sampling's), `grading.*`, `rescore`, `chunk_size` and the paged cache's `page_size`,
`kv_cache_pages`, `kv_cache_gb` and `prefill_chunk` (as in `sampling`). Prompt style, system message, token budgets and
chat-template arguments are part of each model's identity (the key its samples are stored
under); verdicts record their grader, and a store graded by another one is refused.

On a pod, process `i` of `n` takes `problems[i::n]` (the shares may differ by one problem),
samples them on its own devices (a process-local mesh, as the sample stage does), grades them
and writes `<workdir>/eval/process<i>/{samples,verdicts}.jsonl`; after a barrier, process 0
reads every share and writes the one `results.json`, `pass_at_1.png` and TensorBoard pass@1
per temperature (`<workdir>/eval/`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import jax
from absl import logging

from ssd_jax.checkpoints.orbax import is_model_dir
from ssd_jax.errors import ConfigError, InputError
from ssd_jax.evaluation.evaluator import (
    BASE_NAME,
    SSD_NAME,
    EvalSettings,
    ModelSpec,
    collect_results,
    evaluate_share,
    read_verdicts,
)
from ssd_jax.evaluation.generation import GenerateFn, sampler_generate_fn
from ssd_jax.evaluation.prompts import SYSTEM_MESSAGE_GENERIC
from ssd_jax.evaluation.report import format_table, write_report
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import load_benchmark
from ssd_jax.reading import reading
from ssd_jax.stages import train
from ssd_jax.stages.common import barrier, flat_fields
from ssd_jax.stages.sample import process_local_mesh
from ssd_jax.workdir import Workdir

NAME = "evaluate"
CHECKPOINT_CHOICES = ("final", "all")
FINGERPRINT = ("model", "seed", "dtype", "eval")
EXECUTION_ONLY = ("eval.batch_size", "eval.workers", "eval.model_parallel", "eval.expert_parallel", "eval.chunk_size",
                  "eval.rescore", "eval.page_size", "eval.kv_cache_pages", "eval.kv_cache_gb", "eval.prefill_chunk")
# config.eval.grading's names of the Limits fields whose meaning grading narrows (the rest are the same).
_GRADING_NAMES = {"per_test_timeout_s": "timeout_s", "per_sample_timeout_s": "sample_timeout_s"}
_LCB_FILTERS = ("release_version", "window", "start_date", "end_date", "difficulties", "platforms")


def fingerprint(config: Mapping) -> dict[str, Any]:
    """What the results depend on: the eval section, the base model and, when this run's SSD
    model is evaluated, everything the trained model depends on."""
    fields = flat_fields(config, FINGERPRINT, EXECUTION_ONLY)
    if config["eval"]["include_ssd"]:
        fields.update(train.fingerprint(config))
    return fields


def settings_from_config(config: Mapping) -> EvalSettings:
    section = config["eval"]
    grading = {k: v for k, v in dict(section["grading"]).items() if v is not None}
    known = set(_GRADING_NAMES) | set(Limits.__dataclass_fields__) - set(_GRADING_NAMES.values())
    unknown = set(grading) - known
    if unknown:
        raise ConfigError(f"config.eval.grading has unknown fields {sorted(unknown)}; known: {sorted(known)}")
    grading = {_GRADING_NAMES.get(name, name): value for name, value in grading.items()}
    temperatures = tuple(float(t) for t in section["temperatures"])
    if not temperatures:
        raise ConfigError("config.eval.temperatures is empty: give the evaluation temperatures, e.g. (0.6, 0.8, 1.0)")
    system_message = section["system_message"]
    return EvalSettings(
        temperatures=temperatures, top_k=int(section["top_k"]), top_p=float(section["top_p"]),
        n_samples=int(section["n_samples"]),
        system_message=SYSTEM_MESSAGE_GENERIC if system_message is None else (system_message or None),
        prompt_style=str(section["prompt_style"]), grader=str(section["grader"]),
        grading=Limits(**grading), workers=int(section["workers"]) or None,
        allow_unsandboxed=bool(section["allow_unsandboxed"]),
        chunk_size=int(section["chunk_size"]), rescore=bool(section["rescore"]),
        seed=int(config["seed"]), headline=str(section["headline"]),
        headline_temperature=float(section["headline_temperature"]),
        base_headline_temperature=float(section["base_headline_temperature"]),
        generation=(("max_new_tokens", int(section["max_new_tokens"])), ("dtype", str(config["dtype"])),
                    ("max_total_tokens", int(section["max_total_tokens"])),
                    ("chat_template_kwargs", json.dumps(_template_kwargs(config), sort_keys=True))),
    )


def _template_kwargs(config: Mapping) -> dict[str, Any]:
    kwargs = config["eval"]["chat_template_kwargs"]
    return dict(kwargs.to_dict() if hasattr(kwargs, "to_dict") else kwargs)


def models_from_config(config: Mapping) -> list[ModelSpec]:
    """base (if include_base) and its adaptive variants, ssd (if include_ssd: the trained
    `<workdir>/train/final`, and with eval.checkpoints="all" `ssd@<step>` for every exported
    checkpoint model), extras; distinct names; `base` and its adaptive variants sample with
    base_top_k/base_top_p."""
    section, workdir = config["eval"], Workdir(config["workdir"])
    if section["checkpoints"] not in CHECKPOINT_CHOICES:
        raise ConfigError(f"config.eval.checkpoints={section['checkpoints']!r}: choose one of {CHECKPOINT_CHOICES}")
    models = []
    if section["include_base"]:
        if not config["model"]:
            raise ConfigError("config.model is empty but eval.include_base is set: name the base model")
        models.append(ModelSpec(BASE_NAME, str(config["model"])))
        strengths = [float(a) for a in section["adaptive"]]
        if any(a <= 0 for a in strengths):
            raise ConfigError(f"config.eval.adaptive={tuple(strengths)}: strengths must be > 0 (0 is the base "
                              "model itself)")
        models += [ModelSpec(f"{BASE_NAME}+adaptive{a:g}", str(config["model"]), adaptive=a) for a in strengths]
    if section["include_ssd"]:
        final = workdir.final_model
        if not final.exists():
            raise InputError(f"eval.include_ssd is set but {final} does not exist: train first "
                             f"(launch/train.py) or set --config.eval.include_ssd=False")
        provenance = ";".join(f"{k}={v}" for k, v in sorted(train.fingerprint(config).items()))
        models.append(ModelSpec(SSD_NAME, str(final), provenance=provenance))
        if section["checkpoints"] == "all":
            models += [ModelSpec(f"{SSD_NAME}@{step}", str(workdir.checkpoint_model(step)), provenance=provenance)
                       for step in checkpoint_steps(workdir)]
    models += [ModelSpec.parse(str(ref)) for ref in section["models"]]
    if not models:
        raise ConfigError("nothing to evaluate: set eval.include_base, eval.include_ssd or eval.models")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must differ, got {names}; name extras as name=ref in config.eval.models")
    top_k, top_p = int(section["base_top_k"]), float(section["base_top_p"])
    return [dataclasses.replace(m, top_k=top_k if top_k >= 0 else m.top_k, top_p=top_p if top_p >= 0 else m.top_p)
            if m.name == BASE_NAME or (m.adaptive and m.name.startswith(BASE_NAME + "+")) else m for m in models]


def checkpoint_steps(workdir: Workdir) -> list[int]:
    """The steps whose checkpoint model the trainer exported (`train.checkpoint_models`), in
    order; an export left incomplete (no model marker) is skipped with a warning."""
    directory = workdir.checkpoint_models
    steps = sorted(int(path.name[len("step_"):]) for path in (directory.iterdir() if directory.exists() else ())
                   if path.name.startswith("step_") and path.name[len("step_"):].isdigit())
    complete = [step for step in steps if is_model_dir(str(workdir.checkpoint_model(step)))]
    for step in sorted(set(steps) - set(complete)):
        logging.warning("skipping %s: its export did not finish (no model marker)", workdir.checkpoint_model(step))
    if not complete:
        raise InputError(f"config.eval.checkpoints='all' but {directory} holds no checkpoint models: train with "
                         "config.train.checkpoint_models=True, or set config.eval.checkpoints='final'")
    return complete


def _benchmark(config: Mapping):
    benchmark = dict(config["eval"]["benchmark"])
    name = benchmark.pop("name")
    if not name:
        raise ConfigError("config.eval.benchmark.name is empty: humaneval or livecodebench")
    path, limit = benchmark.pop("path") or None, int(benchmark.pop("limit") or 0)
    filters = {k: v for k, v in benchmark.items() if k in _LCB_FILTERS and v not in (None, "", ())}
    if name != "livecodebench":  # the base config's LiveCodeBench defaults mean nothing elsewhere
        filters = {}
    with reading("eval.benchmark.path", path, "fix the file, or point config.eval.benchmark.path at a good copy"):
        problems = load_benchmark(name, path, limit=limit or None, **filters)
    if not problems:
        raise InputError(f"no problems to evaluate in benchmark {name!r} ({path or 'packaged'}): check "
                         "config.eval.benchmark.path and its filters")
    return problems, {"name": name, "path": path, "filters": filters, "limit": limit}


def run(config: Mapping, generate_fn: GenerateFn | None = None) -> dict[str, Any]:
    """Evaluates this process's share, then (process 0) writes results.json from every share.
    Returns the results (process 0; other processes get None). `generate_fn` replaces the
    sampler (tests)."""
    workdir = Workdir(config["workdir"])
    section = config["eval"]
    problems, info = _benchmark(config)
    settings = settings_from_config(config)
    models = models_from_config(config)
    isolation = resolve_isolation(settings.allow_unsandboxed)  # fail before generating, not after
    if generate_fn is None:
        model_parallel = int(section["model_parallel"]) or int(config["sampling"]["model_parallel"])
        expert_parallel = int(section["expert_parallel"]) or int(config["sampling"]["expert_parallel"])
        generate_fn = sampler_generate_fn(
            max_new_tokens=int(section["max_new_tokens"]), batch_size=int(section["batch_size"]),
            seed=settings.seed, dtype=str(config["dtype"]),
            mesh=process_local_mesh(model_parallel, expert_parallel, "eval"),
            max_total_tokens=int(section["max_total_tokens"]) or None, chat_template_kwargs=_template_kwargs(config),
            cache=dict(page_size=int(section["page_size"]), kv_cache_pages=int(section["kv_cache_pages"]),
                       kv_cache_gb=float(section["kv_cache_gb"]), prefill_chunk=int(section["prefill_chunk"])))
    share = problems[jax.process_index()::jax.process_count()]
    evaluate_share(workdir.eval_share(jax.process_index()), models, share, settings, generate_fn, isolation)
    barrier("ssd_jax evaluation shares graded")
    if jax.process_index() != 0:
        return None
    verdicts = read_verdicts(workdir.eval_shares())
    results = collect_results(verdicts, models, problems, settings, isolation, info)
    write_report(results, workdir.eval)
    _tensorboard_pass_at_1(results, workdir)
    print(format_table(results))
    return results


def _tensorboard_pass_at_1(results: Mapping, workdir: Workdir) -> None:
    """pass@1 per model against temperature (the step axis is temperature × 100)."""
    from ssd_jax.training.metrics import TensorBoardLog

    log = TensorBoardLog(workdir.eval)
    for name, model in results["models"].items():
        for summary in model["temperatures"].values():
            if summary["pass@1"]:
                log.scalars(round(100 * summary["temperature"]), {f"eval/{name}/pass@1": summary["pass@1"]["value"]})
    log.close()
