"""The evaluation grid: models × temperatures × n samples → generate → extract → grade → report.

Everything lands in the store directory as it is produced: `samples.jsonl` (every response,
written after each generation chunk) and `verdicts.jsonl` (every graded sample with its
per-test verdicts, written as each finishes). A rerun reads both and does only what is missing,
so a killed evaluation resumes, and re-scoring (`rescore=True`, e.g. after changing limits)
grades the saved samples again without generating anything. Records are keyed by the model's
identity (`ModelSpec.identity`: its reference and every setting that changes its outputs), so
a store never mixes samples of two different models that share a display name.

The evaluator only needs a `GenerateFn` (`ssd_jax.evaluation.generation`): `(model_ref,
requests) -> one Generated per request`. Tests pass canned responses; real runs use
`sampler_generate_fn` (ssd-jax's own sampler). Prompts and code extraction live in
`ssd_jax.evaluation.prompts`, the stores in `ssd_jax.evaluation.jsonl_store`.
`evaluate_share` runs one process's share of the problems into its own stores and
`collect_results` turns every share's verdicts into results.json (`ssd_jax.stages.evaluate`
does both on a pod, from a run config); `evaluate` is the two in one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from etils import epath

from ssd_jax.errors import ConfigError
from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.generation import Generated, GenerateFn, GenerationRequest
from ssd_jax.evaluation.grading import RUNNERS
from ssd_jax.evaluation.jsonl_store import JsonlStore
from ssd_jax.evaluation.prompts import PROMPT_STYLES, benchmark_messages, extract_code
from ssd_jax.evaluation.report import HEADLINE_RULES, Cell, build_results, format_table, write_report
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems.types import BenchmarkProblem


# -- the grid -------------------------------------------------------------------------------------
BASE_NAME, SSD_NAME = "base", "ssd"  # the run's base model and its SSD model (`ssd@<step>`: a checkpoint's)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a display `name`, a checkpoint reference for load_model, and its
    own top-k / top-p when they differ from the grid's (the paper's base models use their own).
    `adaptive` > 0 samples every grid temperature T with the per-position temperature
    T·(2(1 - p1))^adaptive (ssd_jax.sampling.adaptive): the decode-time rival to SSD."""

    name: str
    ref: str
    top_k: int | None = None
    top_p: float | None = None
    adaptive: float = 0.0
    # What else decides this model's outputs (e.g. the training settings of an SSD model whose
    # directory is reused); part of `identity`.
    provenance: str = ""

    def identity(self, settings: "EvalSettings", generation: Mapping | None = None) -> str:
        """A short hash of the reference, truncation, adaptive strength, prompt style (and system
        message), `generation` settings (token budgets, dtype, chat-template arguments, ...) and
        provenance: samples are stored and looked up under it. The strength enters only when on,
        so a plain model keeps the identity it had before."""
        top_k, top_p = self.truncation(settings)
        system_message = settings.system_message if settings.prompt_style == "livecodebench" else None
        spec = {"ref": self.ref, "top_k": top_k, "top_p": top_p, "prompt_style": settings.prompt_style,
                "system_message": system_message, "seed": settings.seed, "provenance": self.provenance,
                **dict(generation or {})}
        if self.adaptive:
            spec["adaptive"] = float(self.adaptive)
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def truncation(self, settings: "EvalSettings") -> tuple[int, float]:
        return (settings.top_k if self.top_k is None else self.top_k,
                settings.top_p if self.top_p is None else self.top_p)

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        """`name=ref`, or just `ref` (named by its last path component)."""
        name, separator, ref = text.partition("=")
        if separator:
            return cls(name.strip(), ref.strip())
        return cls(Path(text.rstrip("/")).name or text, text)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How to sample and grade: the `config.eval` fields (documented, with their defaults, in
    configs/base.py), built by `ssd_jax.stages.evaluate.settings_from_config`; no config field
    has a default here."""

    temperatures: tuple[float, ...]
    top_k: int
    top_p: float
    n_samples: int
    system_message: str | None
    prompt_style: str
    grader: str
    grading: Limits
    workers: int | None
    allow_unsandboxed: bool
    chunk_size: int
    rescore: bool
    seed: int
    headline: str
    headline_temperature: float
    base_headline_temperature: float
    # Settings of the generator that change outputs (max_new_tokens, dtype, max_total_tokens,
    # chat_template_kwargs): part of each model's identity.
    generation: tuple[tuple[str, object], ...]
    progress: bool = True  # progress bars while grading (not a config field: off in tests)

    def model_id(self, model: ModelSpec) -> str:
        return model.identity(self, dict(self.generation))

    def headline_rule(self, model: str) -> dict:
        """How `model`'s headline pass@1 is read (report.headline): the base model at its own T."""
        if self.headline == "split":
            return {"mode": "split"}
        return {"mode": "fixed", "temperature": self.base_headline_temperature if model == BASE_NAME
                else self.headline_temperature}

    def __post_init__(self):
        if self.headline not in HEADLINE_RULES:
            raise ConfigError(f"config.eval.headline={self.headline!r}: choose one of {HEADLINE_RULES}")
        if self.headline == "fixed":
            grid = {f"{t:g}" for t in self.temperatures}
            for field in ("headline_temperature", "base_headline_temperature"):
                value = getattr(self, field)
                if f"{value:g}" not in grid:
                    raise ConfigError(f"config.eval.{field}={value:g} must be one of config.eval.temperatures "
                                      f"({', '.join(sorted(grid))}) when config.eval.headline='fixed'")
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"config.eval.prompt_style={self.prompt_style!r}: choose one of {PROMPT_STYLES}")
        if self.grader not in RUNNERS:
            raise ConfigError(f"config.eval.grader={self.grader!r}: choose one of {RUNNERS}")


def _key(model_id: str, temperature: float, problem_id: str, sample_index: int) -> tuple:
    return model_id, f"{temperature:g}", problem_id, sample_index


def _record_key(record: Mapping) -> tuple:
    return _key(record["model_id"], record["temperature"], record["problem_id"], record["sample_index"])


def _grid(models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem], settings: EvalSettings):
    for model in models:
        for temperature in settings.temperatures:
            for problem in problems:
                for index in range(settings.n_samples):
                    yield model, temperature, problem, index


def generate_missing(store: JsonlStore, models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
                     settings: EvalSettings, generate_fn: GenerateFn) -> dict[tuple, dict]:
    """Every sample of the grid, drawing (and saving, chunk by chunk) only those not yet saved.
    Saved samples of another model identity (another ref, truncation, adaptive strength, token
    budget, ...) are never taken for this one's."""
    samples = {_record_key(r): r for r in store.read()}
    messages = {p.id: tuple(benchmark_messages(p, settings.system_message, settings.prompt_style)) for p in problems}
    for model in models:
        top_k, top_p = model.truncation(settings)
        model_id = settings.model_id(model)
        missing = [GenerationRequest(problem.id, index, messages[problem.id], temperature, top_k, top_p,
                                     model.adaptive)
                   for _, temperature, problem, index in _grid([model], problems, settings)
                   if _key(model_id, temperature, problem.id, index) not in samples]
        for start in range(0, len(missing), settings.chunk_size):
            chunk = missing[start:start + settings.chunk_size]
            outputs = list(generate_fn(model.ref, chunk))
            if len(outputs) != len(chunk):
                raise RuntimeError(f"generate_fn returned {len(outputs)} responses for {len(chunk)} requests")
            records = []
            for request, output in zip(chunk, outputs):
                output = output if isinstance(output, Generated) else Generated(str(output))
                records.append({"model": model.name, "model_id": model_id, "ref": model.ref,
                                "prompt_style": settings.prompt_style,
                                "temperature": request.temperature, "top_k": request.top_k, "top_p": request.top_p,
                                "problem_id": request.prompt_id, "sample_index": request.sample_index,
                                "text": output.text, "finish_reason": output.finish_reason,
                                "num_tokens": output.num_tokens, "adaptive": request.adaptive})
            store.append(records)
            samples.update((_record_key(r), r) for r in records)
    store.flush()
    return samples


def grade_missing(store: JsonlStore, samples: Mapping[tuple, dict], problems: Sequence[BenchmarkProblem],
                  keys: Sequence[tuple], settings: EvalSettings, isolation) -> dict[tuple, dict]:
    """Verdicts for `keys`, grading (and saving as each finishes) only the ungraded samples."""
    if settings.rescore:
        store.clear()
    verdicts = {_record_key(r): r for r in store.read()}
    other = {r.get("grader", "robust") for r in verdicts.values()} - {settings.grader}
    if other:
        raise ValueError(f"{store.path} holds verdicts of the {sorted(other)} grader (config.eval.grader="
                         f"{settings.grader!r}); set config.eval.rescore=True to grade the samples again")
    by_id = {p.id: p for p in problems}
    todo = [key for key in keys if key not in verdicts]
    jobs = [GradingJob(by_id[key[2]], extract_code(samples[key]["text"]), settings.grader) for key in todo]

    def save(index: int, result) -> None:
        record = {name: samples[todo[index]][name]
                  for name in ("model", "model_id", "temperature", "problem_id", "sample_index")}
        record["grader"] = settings.grader
        record.update(result.to_json())
        store.append([record])
        verdicts[todo[index]] = record

    grade_all(jobs, settings.grading, isolation, workers=settings.workers, on_result=save, progress=settings.progress)
    store.flush()
    return verdicts


def grid_keys(models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem], settings: EvalSettings) -> list:
    return [_key(settings.model_id(m), t, p.id, i) for m, t, p, i in _grid(models, problems, settings)]


def evaluate_share(directory: str | epath.PathLike, models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
                   settings: EvalSettings, generate_fn: GenerateFn, isolation) -> dict[tuple, dict]:
    """Generates and grades the grid over `problems` into `directory`'s stores; returns the verdicts."""
    directory = epath.Path(directory)
    samples = generate_missing(JsonlStore(directory / "samples.jsonl"), models, problems, settings, generate_fn)
    keys = grid_keys(models, problems, settings)
    return grade_missing(JsonlStore(directory / "verdicts.jsonl"), samples, problems, keys, settings, isolation)


def collect_results(verdicts: Mapping[tuple, dict], models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
                    settings: EvalSettings, isolation, benchmark_info: Mapping | None = None) -> dict:
    """results.json's content from the verdicts of the whole grid (every process's share)."""
    cells = {}
    for model, temperature, problem, index in _grid(models, problems, settings):
        cell = cells.setdefault((model.name, temperature),
                                Cell(model.name, model.ref, temperature, *model.truncation(settings)))
        verdict = verdicts[_key(settings.model_id(model), temperature, problem.id, index)]
        cell.passes.setdefault(problem.id, []).append(verdict["passed"])
        cell.statuses[verdict["status"]] += 1
    info = {
        "benchmark": dict(benchmark_info or {}, num_problems=len(problems)),
        "sandbox": isolation.describe(),
        "grading_limits": dataclasses.asdict(settings.grading),
        "n_samples": settings.n_samples,
        "seed": settings.seed,
        "prompt_style": settings.prompt_style,
        "system_message": settings.system_message if settings.prompt_style == "livecodebench" else None,
        "grader": settings.grader,
    }
    rules = {model.name: settings.headline_rule(model.name) for model in models}
    return build_results(list(cells.values()), {p.id: p.difficulty for p in problems}, info, settings.seed, rules)


def read_verdicts(directories: Iterable[str | epath.PathLike]) -> dict[tuple, dict]:
    """Every verdict saved in the stores of `directories` (one per process)."""
    return {_record_key(r): r for directory in directories
            for r in JsonlStore(epath.Path(directory) / "verdicts.jsonl").read()}


def evaluate(workdir: str | epath.PathLike, models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
             settings: EvalSettings, generate_fn: GenerateFn, benchmark_info: Mapping | None = None) -> dict:
    """Runs the whole grid in this process, writes results.json and pass_at_1.png into
    `workdir`, prints the table."""
    if not problems:
        raise ValueError("no problems to evaluate: check the benchmark path and filters")
    isolation = resolve_isolation(settings.allow_unsandboxed)  # fail before generating, not after
    verdicts = evaluate_share(workdir, models, problems, settings, generate_fn, isolation)
    results = collect_results(verdicts, models, problems, settings, isolation, benchmark_info)
    write_report(results, workdir)
    print(format_table(results))
    return results
