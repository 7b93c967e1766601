"""The evaluation grid: models × temperatures × n samples → generate → extract → grade → report.

Everything lands in the workdir as it is produced: `samples.jsonl` (every response, written
after each generation chunk) and `verdicts.jsonl` (every graded sample with its per-test
verdicts, written as each finishes). A rerun reads both and does only what is missing, so a
killed evaluation resumes, and re-scoring (`rescore=True`, e.g. after changing limits) grades
the saved samples again without generating anything.

The evaluator only needs a `GenerateFn`: `(model_ref, requests) -> one Generated per request`.
Tests pass canned responses; real runs use `sampler_generate_fn` (ssd-jax's own sampler).
`evaluate_from_config` runs the grid a run config describes (its `eval` section):

  top level                   workdir (outputs go to `<workdir>/eval/`), model (the base model),
                              seed, dtype, mesh
  include_base                the base model, named "base"; the model named "base" samples with
                              base_top_k/base_top_p (-1 = same as top_k/top_p)
  adaptive                    adaptive-temperature strengths: each adds the base model again,
                              named "base+adaptive<a>", sampled with base's truncation and the
                              per-position temperature of ssd_jax.sampling.adaptive
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
                              max_file_mb, max_output_mb (the sandbox's Limits, per_test_timeout_s
                              as timeout_s and per_sample_timeout_s as sample_timeout_s; omitted =
                              defaults)
  rescore, chunk_size         optional: re-grade saved samples; requests per generation call
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.report import Cell, build_results, format_table, write_report
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import load_benchmark
from ssd_jax.problems.types import BenchmarkProblem


# -- the prompt: LiveCodeBench's instruct format -------------------------------------------------
# The wording is LiveCodeBench's own (its `PromptConstants` and generic question template), so
# scores are comparable with its leaderboard. HumanEval problems use the same template with the
# function prompt as the starter code. The model's chat template renders these messages.
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
    "the sample inputs). Enclose your code within delimiters as follows."
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


def benchmark_messages(problem: BenchmarkProblem, system_message: str | None = SYSTEM_MESSAGE_GENERIC) -> list[dict[str, str]]:
    """[system, user] messages for `problem`; an empty or None `system_message` leaves it out
    (for chat templates without a system role)."""
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
                        mesh_axes: Mapping[str, int] | None = None) -> GenerateFn:
    """A GenerateFn backed by `ssd_jax.sampling.sampler.Sampler` (imported on first use).

    The model's chat template renders the messages; the most recently used model stays
    loaded, so calls for one model in a row reuse its compiled sampler. `mesh_axes`
    (data/fsdp/model sizes, as config.mesh) shards the model over this host's devices.
    """
    current: dict = {}

    def generate(model_ref: str, requests: Sequence[GenerationRequest]) -> list[Generated]:
        from ssd_jax.checkpoints.load import load_model
        from ssd_jax.parallel.mesh import make_mesh
        from ssd_jax.sampling.sampler import SampleRequest, Sampler

        if current.get("ref") != model_ref:
            current.clear()
            mesh = make_mesh(**mesh_axes) if mesh_axes else None
            loaded = load_model(model_ref, dtype=dtype, mesh=mesh)
            sampler = Sampler(loaded, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, mesh=mesh)
            current.update(ref=model_ref, loaded=loaded, sampler=sampler)
        loaded, sampler = current["loaded"], current["sampler"]
        # One call for all of them: the points of a temperature grid fill batches together (the
        # sampler keys randomness by prompt id and sample index, shared across the grid).
        sample_requests = [
            SampleRequest(prompt_id=r.prompt_id, sample_index=r.sample_index,
                          prompt_text=loaded.chat_template.render(list(r.messages), add_generation_prompt=True),
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
    """Records appended one line each (flushed, not fsynced: this survives a killed process,
    not a power cut); a torn last line (the process was killed while writing
    it) is dropped on reading, so resuming regenerates or regrades exactly that record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records, good_bytes = [], 0
        with self.path.open("rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{self.path}: unreadable record {line[:200]!r}; fix or delete that line") from None
                good_bytes += len(line)
        if good_bytes != self.path.stat().st_size:
            os.truncate(self.path, good_bytes)
        return records

    def append(self, records: Iterable[dict]) -> None:
        data = "".join(json.dumps(record) + "\n" for record in records)
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(data)  # flushed on close: a killed process loses at most a torn last line

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# -- the grid -------------------------------------------------------------------------------------
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
    grading: Limits = Limits()
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
        missing = [GenerationRequest(problem.id, index, messages[problem.id], temperature, top_k, top_p, model.adaptive)
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
                                "finish_reason": output.finish_reason, "num_tokens": output.num_tokens,
                                "adaptive": request.adaptive})
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


# -- the grid a run config describes ------------------------------------------------------------
BASE_NAME, SSD_NAME = "base", "ssd"
_LCB_FILTERS = ("release_version", "window", "start_date", "end_date", "difficulties", "platforms")
# config.eval.grading's names of the Limits fields whose meaning grading narrows (the rest are the same).
_GRADING_NAMES = {"per_test_timeout_s": "timeout_s", "per_sample_timeout_s": "sample_timeout_s"}


def _get(section: Mapping, name: str, default=None):
    value = section.get(name, default)
    return default if value is None else value


def eval_workdir(config: Mapping) -> str:
    return os.path.join(config["workdir"], "eval")


def settings_from_config(config: Mapping) -> EvalSettings:
    section = config["eval"]
    grading = {k: v for k, v in dict(_get(section, "grading", {})).items() if v is not None}
    known = set(_GRADING_NAMES) | set(Limits.__dataclass_fields__) - set(_GRADING_NAMES.values())
    unknown = set(grading) - known
    if unknown:
        raise ValueError(f"config.eval.grading has unknown fields {sorted(unknown)}; known: {sorted(known)}")
    grading = {_GRADING_NAMES.get(name, name): value for name, value in grading.items()}
    temperatures = tuple(float(t) for t in _get(section, "temperatures", ()))
    if not temperatures:
        raise ValueError("config.eval.temperatures is empty: give the evaluation temperatures, e.g. (0.6, 0.8, 1.0)")
    system_message = section.get("system_message")
    return EvalSettings(
        temperatures=temperatures, top_k=int(_get(section, "top_k", 20)), top_p=float(_get(section, "top_p", 0.8)),
        n_samples=int(_get(section, "n_samples", 10)),
        system_message=SYSTEM_MESSAGE_GENERIC if system_message is None else (system_message or None),
        grading=Limits(**grading), workers=int(_get(section, "workers", 0)) or None,
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
        strengths = [float(a) for a in _get(section, "adaptive", ())]
        if any(a <= 0 for a in strengths):
            raise ValueError(f"config.eval.adaptive={tuple(strengths)}: strengths must be > 0 (0 is the base model itself)")
        models += [ModelSpec(f"{BASE_NAME}+adaptive{a:g}", config["model"], adaptive=a) for a in strengths]
    if _get(section, "include_ssd", True):
        final = os.path.join(config["workdir"], "train", "final")
        if not os.path.isdir(final):
            raise FileNotFoundError(f"eval.include_ssd is set but {final} does not exist: train first "
                                    f"(launch/train.py) or set --config.eval.include_ssd=False")
        models.append(ModelSpec(SSD_NAME, final))
    return models + [ModelSpec.parse(str(ref)) for ref in _get(section, "models", ())]


def _checked(models: list[ModelSpec | str], section: Mapping) -> list[ModelSpec]:
    """ModelSpecs with distinct names; `base` (and its adaptive variants) sample with base_top_k/base_top_p."""
    models = [m if isinstance(m, ModelSpec) else ModelSpec.parse(str(m)) for m in models]
    if not models:
        raise ValueError("nothing to evaluate: set eval.include_base, eval.include_ssd or eval.models")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ, got {names}; name extras as name=ref")
    top_k, top_p = int(_get(section, "base_top_k", -1)), float(_get(section, "base_top_p", -1.0))
    return [dataclasses.replace(m, top_k=top_k if top_k >= 0 else m.top_k, top_p=top_p if top_p >= 0 else m.top_p)
            if m.name == BASE_NAME or (m.adaptive and m.name.startswith(BASE_NAME + "+")) else m for m in models]


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
    problems = load_benchmark(name, path, limit=limit or None, **filters)
    settings = settings_from_config(config)
    models = _checked(models if models is not None else models_from_config(config), section)
    generate_fn = generate_fn or sampler_generate_fn(
        max_new_tokens=int(_get(section, "max_new_tokens", 1024)), batch_size=int(_get(section, "batch_size", 32)),
        seed=settings.seed, dtype=str(_get(config, "dtype", "float32")), mesh_axes=dict(_get(config, "mesh", {})))
    info = {"name": name, "path": path, "filters": filters, "limit": limit}
    return evaluate(workdir or eval_workdir(config), models, problems, settings, generate_fn, info)
