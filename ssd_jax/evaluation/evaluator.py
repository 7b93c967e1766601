"""The evaluation grid: models × temperatures × n samples → generate → extract → grade → report.

Everything lands in the workdir as it is produced: `samples.jsonl` (every response, written
after each generation chunk) and `verdicts.jsonl` (every graded sample with its per-test
verdicts, written as each finishes). A rerun reads both and does only what is missing, so a
killed evaluation resumes, and re-scoring (`rescore=True`, e.g. after changing limits) grades
the saved samples again without generating anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from ssd_jax.evaluation.benchmarks.types import BenchmarkProblem
from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.extract import extract_code
from ssd_jax.evaluation.generation import GenerateFn, Generated, GenerationRequest
from ssd_jax.evaluation.grading import GradingLimits
from ssd_jax.evaluation.isolation import resolve_isolation
from ssd_jax.evaluation.prompts import SYSTEM_MESSAGE_GENERIC, benchmark_messages
from ssd_jax.evaluation.report import Cell, build_results, format_table, write_report
from ssd_jax.evaluation.store import JsonlStore


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a display `name`, a checkpoint reference for load_model, and its
    own top-k / top-p when they differ from the grid's (the paper's base models use their own)."""

    name: str
    ref: str
    top_k: int | None = None
    top_p: float | None = None

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
    """How to sample and grade; see launch/evaluate.py for the config fields behind these."""

    temperatures: tuple[float, ...]
    top_k: int = 20
    top_p: float = 0.8
    n_samples: int = 10
    system_message: str | None = SYSTEM_MESSAGE_GENERIC
    grading: GradingLimits = GradingLimits()
    workers: int | None = None
    allow_unsandboxed: bool = False
    chunk_size: int = 512
    rescore: bool = False
    seed: int = 0
    progress: bool = True


def _key(model: str, temperature: float, problem_id: str, sample_index: int) -> tuple:
    return model, f"{temperature:g}", problem_id, sample_index


def _record_key(record: Mapping) -> tuple:
    return _key(record["model"], record["temperature"], record["problem_id"], record["sample_index"])


def _grid(models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem], settings: EvalSettings):
    for model in models:
        for temperature in settings.temperatures:
            for problem in problems:
                for index in range(settings.n_samples):
                    yield model, temperature, problem, index


def generate_missing(store: JsonlStore, models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
                     settings: EvalSettings, generate_fn: GenerateFn) -> dict[tuple, dict]:
    """Every sample of the grid, drawing (and saving, chunk by chunk) only those not yet saved."""
    samples = {_record_key(r): r for r in store.read()}
    truncation = {model.name: model.truncation(settings) for model in models}
    for record in samples.values():
        wanted = truncation.get(record["model"])
        if wanted is not None and (record["top_k"], record["top_p"]) != wanted:
            raise ValueError(f"{store.path} holds samples of {record['model']} drawn with top_k={record['top_k']}, "
                             f"top_p={record['top_p']} (config: {wanted[0]}, {wanted[1]}); use a new workdir")
    messages = {p.id: tuple(benchmark_messages(p, settings.system_message)) for p in problems}
    for model in models:
        top_k, top_p = truncation[model.name]
        missing = [GenerationRequest(problem.id, index, messages[problem.id], temperature, top_k, top_p)
                   for m, temperature, problem, index in _grid([model], problems, settings)
                   if _key(m.name, temperature, problem.id, index) not in samples]
        for start in range(0, len(missing), settings.chunk_size):
            chunk = missing[start:start + settings.chunk_size]
            outputs = list(generate_fn(model.ref, chunk))
            if len(outputs) != len(chunk):
                raise RuntimeError(f"generate_fn returned {len(outputs)} responses for {len(chunk)} requests")
            records = []
            for request, output in zip(chunk, outputs):
                output = output if isinstance(output, Generated) else Generated(str(output))
                records.append({"model": model.name, "ref": model.ref, "temperature": request.temperature,
                                "top_k": request.top_k, "top_p": request.top_p, "problem_id": request.prompt_id,
                                "sample_index": request.sample_index, "text": output.text,
                                "finish_reason": output.finish_reason, "num_tokens": output.num_tokens})
            store.append(records)
            samples.update((_record_key(r), r) for r in records)
    return samples


def grade_missing(store: JsonlStore, samples: Mapping[tuple, dict], problems: Sequence[BenchmarkProblem],
                  keys: Sequence[tuple], settings: EvalSettings, isolation) -> dict[tuple, dict]:
    """Verdicts for `keys`, grading (and saving as each finishes) only the ungraded samples."""
    if settings.rescore:
        store.clear()
    verdicts = {_record_key(r): r for r in store.read()}
    by_id = {p.id: p for p in problems}
    todo = [key for key in keys if key not in verdicts]
    jobs = [GradingJob(by_id[key[2]], extract_code(samples[key]["text"])) for key in todo]

    def save(index: int, result) -> None:
        record = {name: samples[todo[index]][name] for name in ("model", "temperature", "problem_id", "sample_index")}
        record.update(result.to_json())
        store.append([record])
        verdicts[todo[index]] = record

    grade_all(jobs, settings.grading, isolation, workers=settings.workers, on_result=save, progress=settings.progress)
    return verdicts


def evaluate(workdir: str | Path, models: Sequence[ModelSpec], problems: Sequence[BenchmarkProblem],
             settings: EvalSettings, generate_fn: GenerateFn, benchmark_info: Mapping | None = None) -> dict:
    """Runs the grid, writes results.json and pass_at_1.png into `workdir`, prints the table."""
    if not problems:
        raise ValueError("no problems to evaluate: check the benchmark path and filters")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    isolation = resolve_isolation(settings.allow_unsandboxed)  # fail before generating, not after
    samples = generate_missing(JsonlStore(workdir / "samples.jsonl"), models, problems, settings, generate_fn)
    keys = [_key(m.name, t, p.id, i) for m, t, p, i in _grid(models, problems, settings)]
    verdicts = grade_missing(JsonlStore(workdir / "verdicts.jsonl"), samples, problems, keys, settings, isolation)

    cells = {}
    for model, temperature, problem, index in _grid(models, problems, settings):
        cell = cells.setdefault((model.name, temperature),
                                Cell(model.name, model.ref, temperature, *model.truncation(settings)))
        verdict = verdicts[_key(model.name, temperature, problem.id, index)]
        cell.passes.setdefault(problem.id, []).append(verdict["passed"])
        cell.statuses[verdict["status"]] += 1
    info = {
        "benchmark": dict(benchmark_info or {}, num_problems=len(problems)),
        "sandbox": isolation.describe(),
        "grading_limits": dataclasses.asdict(settings.grading),
        "n_samples": settings.n_samples,
        "seed": settings.seed,
        "system_message": settings.system_message,
    }
    results = build_results(list(cells.values()), {p.id: p.difficulty for p in problems}, info, settings.seed)
    write_report(results, workdir)
    print(format_table(results))
    return results
