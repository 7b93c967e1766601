"""rStar-Coder `seed_sft` prompts from a local copy (parquet shards or a JSONL export).

The SSD recipe de-duplicates the seed problems by exact match of the whitespace-normalised
statement, keeping the first occurrence, and (in the paper configs) then keeps only problems
whose kept row has `is_passed` true — the order of a public reproduction that recovers the
paper's 10,167 prompts (reported on the apple/ml-ssd tracker).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ssd_jax.problems.types import Problem

SOURCE = "rstar-coder"
COLUMNS = ("question", "starter_code", "is_passed")
_SUFFIXES = (".parquet", ".jsonl")


def normalize_statement(text: str) -> str:
    """Collapses every run of whitespace to one space and strips the ends."""
    return " ".join(text.split())


def statement_id(normalized_statement: str) -> str:
    """A stable id: a hash of the normalised statement, independent of file order."""
    digest = hashlib.sha256(normalized_statement.encode("utf-8")).hexdigest()
    return f"rstar-{digest[:16]}"


def rstar_files(path: str | Path) -> list[Path]:
    """The shard files under `path` (a file, a `seed_sft` dir, or a dir containing one)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"rStar-Coder data not found: {path} does not exist")
    if path.is_file():
        return [path]
    for directory in (path, path / "seed_sft"):
        files = sorted(p for p in directory.glob("*") if p.suffix in _SUFFIXES and p.is_file())
        if files:
            return files
    raise FileNotFoundError(
        f"no *.parquet or *.jsonl files in {path} (or {path / 'seed_sft'}); point the path at "
        "a local copy of rStar-Coder's seed_sft shards"
    )


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    shard = pq.ParquetFile(path)
    missing = [c for c in COLUMNS if c not in shard.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: missing rStar-Coder column(s) {missing}; is this seed_sft?")
    for batch in shard.iter_batches(columns=list(COLUMNS), batch_size=4096):
        yield from batch.to_pylist()


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({error})") from None
            if not isinstance(row, dict) or "question" not in row:
                raise ValueError(f"{path}:{line_number}: expected an object with a 'question' field")
            yield row


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    return _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path)


def load_rstar_seed(path: str | Path, *, require_passed: bool = False) -> list[Problem]:
    """Reads rStar-Coder seed problems, de-duplicated, optionally only `is_passed` ones."""
    counts = {"rows": 0, "empty": 0, "duplicate": 0, "not_passed": 0}
    seen: set[str] = set()
    problems = []
    for file in rstar_files(path):
        for row in _rows(file):
            counts["rows"] += 1
            normalized = normalize_statement(row.get("question") or "")
            if not normalized:
                counts["empty"] += 1
                continue
            if normalized in seen:
                counts["duplicate"] += 1
                continue
            seen.add(normalized)
            if require_passed and not row.get("is_passed"):
                counts["not_passed"] += 1
                continue
            problems.append(
                Problem(
                    id=statement_id(normalized),
                    statement=row["question"].strip(),
                    starter_code=(row.get("starter_code") or "").rstrip(),
                    source=SOURCE,
                )
            )
    logging.info(
        "rStar-Coder %s: %d rows → %d problems (dropped %d empty, %d duplicate statements, "
        "%d not is_passed)",
        path, counts["rows"], len(problems), counts["empty"], counts["duplicate"],
        counts["not_passed"],
    )
    return problems
