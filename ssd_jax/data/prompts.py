"""`load_prompts(source, path, **options)`: every prompt source behind one name.

Sources:
  rstar-coder    rStar-Coder `seed_sft` (parquet shards or JSONL); options: require_passed
  jsonl          generic JSONL with `id` and `prompt` or `messages`
  offline        the 235 problems shipped in the package (no path)
  humaneval      HumanEval via ssd_jax.problems (path optional: packaged copy)
  livecodebench  LiveCodeBench via ssd_jax.problems; options as load_benchmark

Every source also takes `limit` (keep the first N problems).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssd_jax.data.jsonl_prompts import load_jsonl_prompts
from ssd_jax.data.offline_problems import load_offline_problems
from ssd_jax.data.rstar import load_rstar_seed
from ssd_jax.problems import load_benchmark
from ssd_jax.problems.types import Problem


def _needs_path(source: str, path: str | None) -> str:
    if path is None:
        raise ValueError(f"prompt source {source!r} needs a path to a local copy of its data")
    return path


def _rstar(path: str | None, *, require_passed: bool = False) -> list[Problem]:
    return load_rstar_seed(_needs_path("rstar-coder", path), require_passed=require_passed)


def _jsonl(path: str | None) -> list[Problem]:
    return load_jsonl_prompts(_needs_path("jsonl", path))


def _offline(path: str | None) -> list[Problem]:
    if path is not None:
        raise ValueError("prompt source 'offline' is shipped in the package; pass no path")
    return load_offline_problems()


def _benchmark(name: str) -> Callable[..., list[Problem]]:
    """A loader of a benchmark's problems as prompts (the evaluator reads the same files)."""

    def load(path: str | None, **options: Any) -> list[Problem]:
        return [item.as_problem() for item in load_benchmark(name, path, **options)]

    return load


SOURCES: dict[str, Callable[..., list[Problem]]] = {
    "rstar-coder": _rstar,
    "jsonl": _jsonl,
    "offline": _offline,
    "humaneval": _benchmark("humaneval"),
    "livecodebench": _benchmark("livecodebench"),
}


def load_prompts(
    source: str, path: str | None = None, *, limit: int | None = None, **options: Any
) -> list[Problem]:
    """Loads the problems of `source` (see the module docstring), first `limit` if given."""
    if source not in SOURCES:
        raise ValueError(f"unknown prompt source {source!r}; known sources: {sorted(SOURCES)}")
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"prompt source {source!r}: {path} does not exist")
    problems = SOURCES[source](path, **options)
    if not problems:
        raise ValueError(
            f"prompt source {source!r} ({path}) has no usable problems; check the file's "
            "contents and filters such as require_passed"
        )
    if limit is not None:
        problems = problems[:limit]
    logging.info("Loaded %d prompts from %s (%s)", len(problems), source, path)
    return problems
