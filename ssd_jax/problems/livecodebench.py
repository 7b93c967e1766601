"""LiveCodeBench `code_generation_lite` from a local copy, read directly (no remote code).

A release `release_vN` is the files `test.jsonl`, `test2.jsonl`, … `testN.jsonl` of the data
set's directory. Date windows compare `contest_date` with midnight of the given days,
inclusive at both ends, exactly as LiveCodeBench's `--start_date/--end_date`: `v5` is
2024-08-01 .. 2025-02-01 and `v6` 2025-02-01 .. 2025-05-01.
"""

from __future__ import annotations

import datetime
import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from ssd_jax.problems.safe_pickle import decode_compressed
from ssd_jax.problems.types import BenchmarkProblem, IOTest

RELEASE_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
WINDOWS = {"v5": ("2024-08-01", "2025-02-01"), "v6": ("2025-02-01", "2025-05-01")}


def release_files(directory: Path, release_version: str) -> list[Path]:
    """The JSONL files making up `release_vN` in a code_generation_lite directory."""
    try:
        count = int(release_version.removeprefix("release_v"))
    except ValueError:
        count = 0
    if not 1 <= count <= len(RELEASE_FILES):
        raise ValueError(f"release_version must be release_v1 .. release_v{len(RELEASE_FILES)}, got {release_version!r}")
    files = [directory / name for name in RELEASE_FILES[:count]]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{release_version} needs {', '.join(missing)}; copy the data set's files there")
    return files


def _rows(path: Path) -> Iterator[tuple[str, dict]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for index, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}: row {index}", row
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield f"{path}:{number}", json.loads(line)
                except ValueError as error:
                    raise ValueError(f"{path}:{number} is not valid JSON ({error})") from None


def decode_tests(text: str, where: str) -> list[IOTest]:
    """Test cases from a JSON string, or from base64 → zlib → pickle → JSON string."""
    try:
        raw = json.loads(text)
    except ValueError:
        try:
            decoded = decode_compressed(text)
        except Exception as error:
            raise ValueError(f"{where}: test cases are neither JSON nor base64/zlib/pickle ({error})") from None
        if not isinstance(decoded, str):
            raise ValueError(f"{where}: the compressed test cases hold {type(decoded).__name__}, expected a JSON string")
        raw = json.loads(decoded)
    if not isinstance(raw, list):
        raise ValueError(f"{where}: test cases must be a list, got {type(raw).__name__}")
    try:
        return [IOTest(input=t["input"], output=t["output"], testtype=t["testtype"]) for t in raw]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{where}: each test case needs input, output and testtype ({error!r})") from None


def problem_from_row(row: dict, where: str) -> BenchmarkProblem:
    """One data-set row as a BenchmarkProblem (public tests first, then private ones)."""
    try:
        metadata = json.loads(row.get("metadata") or "{}")
        tests = decode_tests(row["public_test_cases"], f"{where} public_test_cases") + decode_tests(
            row["private_test_cases"], f"{where} private_test_cases")
        func_name = metadata.get("func_name")
        return BenchmarkProblem(
            id=str(row["question_id"]),
            source="livecodebench",
            title=row.get("question_title", ""),
            statement=row["question_content"],
            starter_code=row.get("starter_code") or "",
            difficulty=row.get("difficulty", ""),
            kind="functional" if func_name else "stdin",
            tests=tuple(tests),
            func_name=func_name,
            platform=row.get("platform", ""),
            contest_date=row.get("contest_date", ""),
        )
    except KeyError as error:
        raise ValueError(f"{where}: missing field {error} of a code_generation_lite row") from None


def _midnight(day: str | None) -> datetime.datetime | None:
    return None if day is None else datetime.datetime.strptime(day, "%Y-%m-%d")


def load_livecodebench(
    path: str | Path | Sequence[str | Path],
    *,
    release_version: str = "release_v6",
    window: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    difficulties: Sequence[str] = (),
    platforms: Sequence[str] = (),
) -> list[BenchmarkProblem]:
    """Problems from a code_generation_lite directory (`release_version` picks its files), or
    from explicit JSONL/parquet files; filtered by a named `window` (v5, v6) or by
    `start_date`/`end_date` (YYYY-MM-DD), by difficulty and by platform; sorted by id."""
    if window is not None:
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {sorted(WINDOWS)}, got {window!r}; or give start_date/end_date")
        start_date, end_date = start_date or WINDOWS[window][0], end_date or WINDOWS[window][1]
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    files = release_files(paths[0], release_version) if len(paths) == 1 and paths[0].is_dir() else paths
    start, end = _midnight(start_date), _midnight(end_date)
    problems = {}
    for file in files:
        for where, row in _rows(file):
            problem = problem_from_row(row, where)
            date = datetime.datetime.fromisoformat(problem.contest_date) if problem.contest_date else None
            if (start or end) and date is None:
                raise ValueError(f"{where}: no contest_date, so the date window cannot be applied")
            if (start and date < start) or (end and date > end):
                continue
            if difficulties and problem.difficulty not in difficulties:
                continue
            if platforms and problem.platform not in platforms:
                continue
            problems[problem.id] = problem
    return [problems[key] for key in sorted(problems)]
