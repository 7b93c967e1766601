"""The evaluation grid: models × temperatures × n samples → generate → extract → grade → report.

Everything lands in the store directory as it is produced: `samples.jsonl` (every response,
written after each generation chunk) and `verdicts.jsonl` (every graded sample with its
per-test verdicts, written as each finishes). A rerun reads both and does only what is missing,
so a killed evaluation resumes, and re-scoring (`rescore=True`, e.g. after changing limits)
grades the saved samples again without generating anything. Records are keyed by the model's
identity (`ModelSpec.identity`: its reference and every setting that changes its outputs), so
a store never mixes samples of two different models that share a display name.

The evaluator only needs a `GenerateFn`: `(model_ref, requests) -> one Generated per request`.
Tests pass canned responses; real runs use `sampler_generate_fn` (ssd-jax's own sampler).
`evaluate_share` runs one process's share of the problems into its own stores and
`collect_results` turns every share's verdicts into results.json (`ssd_jax.stages.evaluate`
does both on a pod, from a run config); `evaluate` is the two in one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from etils import epath

from ssd_jax.errors import ConfigError
from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.grading import RUNNERS
from ssd_jax.evaluation.report import HEADLINE_RULES, Cell, build_results, format_table, write_report
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems.types import BenchmarkProblem
from ssd_jax.workdir import is_local

if TYPE_CHECKING:
    import jax


# -- the prompt: LiveCodeBench's instruct format, or the paper's released evaluation's -----------
# `livecodebench`: LiveCodeBench's own wording (its `PromptConstants` and generic question
# template, `lcb_runner/prompts/code_generation.py`, with the sentence it added to the stdin
# format in 2025), so scores are comparable with its leaderboard. `ml-ssd`: the wording of the
# paper's released evaluation (apple/ml-ssd `evaluation/benchmark.py`): a single user turn, no
# system message. HumanEval problems use the starter-code form with the function prompt as the
# starter code. The model's chat template renders these messages.
PROMPT_STYLES = ("livecodebench", "ml-ssd")
SYSTEM_MESSAGE_GENERIC = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests. You will NOT "
    "return anything except for the program."
)
FORMATTING_MESSAGE_WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters."
)
FORMATTING_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "
    "the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program "
    "runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)
ML_SSD_INSTRUCTION = (
    "You will be given a question (problem specification) and will generate a correct Python program that "
    "matches the specification and passes all tests. You will NOT return anything except for the program."
)
ML_SSD_WITHOUT_STARTER_CODE = (
    ML_SSD_INSTRUCTION + "\n\nQuestion: {statement}\n\n" + FORMATTING_WITHOUT_STARTER_CODE
    + "\n```python\n  # YOUR CODE HERE\n```"
)
ML_SSD_WITH_STARTER_CODE = (
    ML_SSD_INSTRUCTION + "\n\nQuestion: {statement}\n\nYou will use the following starter code to write the "
    "solution to the problem and enclose your code within delimiters as follows.\n```python\n{starter_code}\n```"
)


def question_prompt(statement: str, starter_code: str) -> str:
    """LiveCodeBench's user turn: `### Question:`, `### Format:` (starter code or a stub), `### Answer:`."""
    prompt = f"### Question:\n{statement}\n\n"
    if starter_code:
        prompt += f"### Format: {FORMATTING_MESSAGE_WITH_STARTER_CODE}\n"
        prompt += f"```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {FORMATTING_WITHOUT_STARTER_CODE}\n"
        prompt += "```python\n# YOUR CODE HERE\n```\n\n"
    prompt += "### Answer: (use the provided format with backticks)\n\n"
    return prompt


def ml_ssd_prompt(problem: BenchmarkProblem) -> str:
    """The released evaluation's user turn: stdin problems without starter code, the rest with it."""
    if problem.kind == "stdin":
        return ML_SSD_WITHOUT_STARTER_CODE.format(statement=problem.statement)
    starter = problem.starter_code.rstrip("\n") if problem.kind == "script" else problem.starter_code
    return ML_SSD_WITH_STARTER_CODE.format(statement=problem.statement, starter_code=starter)


def benchmark_messages(problem: BenchmarkProblem, system_message: str | None = SYSTEM_MESSAGE_GENERIC,
                       style: str = "livecodebench") -> list[dict[str, str]]:
    """The chat messages for `problem` in prompt `style`. livecodebench: [system, user], an empty
    or None `system_message` leaving the system turn out (for chat templates without a system
    role); ml-ssd: [user] only."""
    if style not in PROMPT_STYLES:
        raise ConfigError(f"config.eval.prompt_style={style!r}: choose one of {PROMPT_STYLES}")
    if style == "ml-ssd":
        return [{"role": "user", "content": ml_ssd_prompt(problem)}]
    messages = [{"role": "system", "content": system_message}] if system_message else []
    starter = problem.starter_code.rstrip("\n") if problem.kind == "script" else problem.starter_code
    messages.append({"role": "user", "content": question_prompt(problem.statement, starter)})
    return messages


# -- what the evaluator asks of a model, and the default answerer: ssd-jax's own sampler --------
@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One sample to draw: chat `messages` for problem `prompt_id`, sample number `sample_index`."""

    prompt_id: str
    sample_index: int
    messages: tuple[dict, ...]
    temperature: float
    top_k: int
    top_p: float
    adaptive: float = 0.0  # adaptive-temperature strength (ssd_jax.sampling.adaptive), 0 = off


@dataclasses.dataclass(frozen=True)
class Generated:
    """A model's response to one request."""

    text: str
    finish_reason: str = ""
    num_tokens: int = 0


GenerateFn = Callable[[str, Sequence[GenerationRequest]], Sequence[Generated]]


def sampler_generate_fn(*, max_new_tokens: int, batch_size: int, seed: int, dtype: str = "float32",
                        mesh: "jax.sharding.Mesh | None" = None, max_total_tokens: int | None = None,
                        chat_template_kwargs: Mapping | None = None, cache: Mapping | None = None) -> GenerateFn:
    """A GenerateFn backed by `ssd_jax.sampling.sampler.Sampler` (imported on first use).

    The model's chat template renders the messages (with `chat_template_kwargs`); a sample ends
    after `max_new_tokens` or when prompt + response reach `max_total_tokens`. The most recently
    used model stays loaded, so calls for one model in a row reuse its compiled sampler. `mesh`
    (this process's devices: sampling never spans hosts) shards the model; one device if None.
    `cache` holds the Sampler's paged-cache arguments (page_size, kv_cache_pages, kv_cache_gb,
    prefill_chunk); the Sampler's defaults where absent.
    """
    current: dict = {}

    def generate(model_ref: str, requests: Sequence[GenerationRequest]) -> list[Generated]:
        from ssd_jax.checkpoints.load import load_model
        from ssd_jax.sampling.sampler import Sampler, SampleRequest

        if current.get("ref") != model_ref:
            current.clear()
            loaded = load_model(model_ref, dtype=dtype, mesh=mesh)
            sampler = Sampler(loaded, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, mesh=mesh,
                              max_total_tokens=max_total_tokens, **dict(cache or {}))
            current.update(ref=model_ref, loaded=loaded, sampler=sampler)
        loaded, sampler = current["loaded"], current["sampler"]
        # One call for all of them: the points of a temperature grid fill batches together (the
        # sampler keys randomness by prompt id and sample index, shared across the grid).
        sample_requests = [
            SampleRequest(prompt_id=r.prompt_id, sample_index=r.sample_index,
                          prompt_text=loaded.chat_template.render(list(r.messages), add_generation_prompt=True,
                                                                  **dict(chat_template_kwargs or {})),
                          temperature=r.temperature, top_k=r.top_k, top_p=r.top_p, adaptive=r.adaptive)
            for r in requests
        ]
        return [Generated(c.text, c.finish_reason, len(c.token_ids)) for c in sampler.generate(sample_requests)]

    return generate


# -- the program inside a response: its last fenced code block (LiveCodeBench's rule) -----------
def extract_code(response: str) -> str | None:
    """The lines between the last two lines that contain a ``` fence; None if there are fewer
    than two such lines or the block is blank (the sample then fails as `no_code`)."""
    lines = response.split("\n")
    fences = [index for index, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    code = "\n".join(lines[fences[-2] + 1:fences[-1]])
    return code if code.strip() else None


# -- append-only JSONL files that survive being killed mid-write (samples, verdicts) ------------
class JsonlStore:
    """Records appended one line each, on local disk or remote storage (gs://).

    Local: appended to one file and flushed (not fsynced: this survives a killed process, not a
    power cut); a torn last line (the process was killed while writing it) is dropped on
    reading, so resuming regenerates or regrades exactly that record. Remote storage cannot
    append: records are buffered and written as numbered part objects `<name>.part-NNNNNN`
    (each whole or absent) every `remote_batch` records, `remote_seconds` seconds and on
    `flush`; a kill loses at most the buffer, which a resume redoes.
    """

    def __init__(self, path: str | epath.PathLike, *, remote_batch: int = 256, remote_seconds: float = 30.0):
        self.path = epath.Path(path)
        self._local = is_local(self.path)
        self._buffer: list[str] = []
        self._remote_batch, self._remote_seconds = remote_batch, remote_seconds
        self._last_flush = time.monotonic()

    def _parts(self) -> list[epath.Path]:
        if not self.path.parent.exists():
            return []
        prefix = self.path.name + ".part-"
        return sorted(p for p in self.path.parent.iterdir() if p.name.startswith(prefix))

    def read(self) -> list[dict]:
        if not self._local:
            return [json.loads(line) for part in self._parts() for line in part.read_text().splitlines()
                    if line] + [json.loads(line) for line in self._buffer]
        if not self.path.exists():
            return []
        records, good_bytes = [], 0
        with open(self.path, "rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{self.path}: unreadable record {line[:200]!r}; fix or delete that line") from None
                good_bytes += len(line)
        if good_bytes != os.path.getsize(self.path):
            os.truncate(self.path, good_bytes)
        return records

    def append(self, records: Iterable[dict]) -> None:
        lines = [json.dumps(record) + "\n" for record in records]
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._local:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("".join(lines))  # flushed on close: a killed process loses at most a torn last line
            return
        self._buffer.extend(lines)
        if len(self._buffer) >= self._remote_batch or time.monotonic() - self._last_flush > self._remote_seconds:
            self.flush()

    def flush(self) -> None:
        """Writes buffered records (remote storage; local appends are already written)."""
        if self._buffer:
            parts = self._parts()
            number = int(parts[-1].name.rsplit("-", 1)[1]) + 1 if parts else 0
            self.path.with_name(f"{self.path.name}.part-{number:06d}").write_text("".join(self._buffer))
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def clear(self) -> None:
        self._buffer.clear()
        for path in [self.path, *self._parts()] if self.path.parent.exists() else []:
            if path.exists():
                path.unlink()


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
