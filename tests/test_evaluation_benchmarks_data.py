"""Benchmark loaders on real-format files; the restricted unpickler; LiveCodeBench's prompt."""

import base64
import gzip
import json
import pickle
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ssd_jax.evaluation.prompts import SYSTEM_MESSAGE_GENERIC, benchmark_messages
from ssd_jax.problems import load_benchmark
from ssd_jax.problems.humaneval import default_humaneval_path
from ssd_jax.problems.safe_pickle import UnsafePickleError, decode_compressed
from ssd_jax.problems.types import Problem

DATA = Path(__file__).parent / "data" / "evaluation"
LCB = DATA / "livecodebench"


def ids(problems):
    return [p.id for p in problems]


def test_release_versions_read_their_files():
    assert ids(load_benchmark("livecodebench", LCB, release_version="release_v1")) == ["3100", "abc350_c", "abc360_a"]
    assert ids(load_benchmark("livecodebench", LCB, release_version="release_v2")) == [
        "3100", "3200", "abc350_c", "abc360_a", "abc390_b"]
    with pytest.raises(FileNotFoundError, match="test3.jsonl"):
        load_benchmark("livecodebench", LCB, release_version="release_v3")
    with pytest.raises(ValueError, match="release_v1 .. release_v6"):
        load_benchmark("livecodebench", LCB, release_version="v2")


def test_date_windows_are_livecodebench_inclusive_midnight_bounds():
    v5 = load_benchmark("livecodebench", LCB, release_version="release_v2", window="v5")
    v6 = load_benchmark("livecodebench", LCB, release_version="release_v2", window="v6")
    assert ids(v5) == ["3100", "abc360_a"]  # abc350_c (2024-07-31) is before v5
    assert ids(v6) == ["3200", "abc390_b"]  # 2025-02-01T12:00 is after v5's end, midnight of 2025-02-01
    custom = load_benchmark("livecodebench", LCB, release_version="release_v2", start_date="2024-07-31",
                            end_date="2024-08-10")
    assert ids(custom) == ["abc350_c", "abc360_a"]  # both ends inclusive
    with pytest.raises(ValueError, match="window must be one of"):
        load_benchmark("livecodebench", LCB, window="v7")


def test_difficulty_and_platform_filters():
    hard = load_benchmark("livecodebench", LCB, release_version="release_v2", difficulties=["hard"])
    assert [(p.id, p.difficulty) for p in hard] == [("3200", "hard")]
    atcoder = load_benchmark("livecodebench", LCB, release_version="release_v2", platforms=["atcoder"])
    assert {p.platform for p in atcoder} == {"atcoder"} and len(atcoder) == 3


def test_rows_become_problems_with_public_then_private_tests():
    rows = {json.loads(line)["question_id"]: json.loads(line) for line in (LCB / "test.jsonl").read_text().splitlines()}
    problems = {p.id: p for p in load_benchmark("livecodebench", LCB, release_version="release_v1")}
    stdin, functional = problems["abc360_a"], problems["3100"]
    public = json.loads(rows["abc360_a"]["public_test_cases"])
    private = json.loads(pickle.loads(zlib.decompress(base64.b64decode(rows["abc360_a"]["private_test_cases"]))))
    assert [t.input for t in stdin.tests] == [t["input"] for t in public + private]
    assert stdin.kind == "stdin" and stdin.func_name is None and stdin.starter_code == ""
    assert functional.kind == "functional" and functional.func_name == "twoSum"
    assert functional.starter_code.startswith("class Solution:")
    problem = stdin.as_problem()
    assert isinstance(problem, Problem)
    assert (problem.id, problem.statement, problem.source) == ("abc360_a", rows["abc360_a"]["question_content"], "livecodebench")


def test_parquet_copy_reads_like_jsonl(tmp_path):
    rows = [json.loads(line) for line in (LCB / "test.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    from_parquet = load_benchmark("livecodebench", [tmp_path / "test.parquet"])
    from_jsonl = load_benchmark("livecodebench", LCB, release_version="release_v1")
    assert from_parquet == from_jsonl


class Exploit:
    def __reduce__(self):
        import os

        return os.system, ("touch /tmp/ssd-unpickle-exploit",)


@pytest.mark.parametrize("payload", [Exploit(), [1, Exploit()], {"x": Path("/etc")}, b"ok"])
def test_restricted_unpickler_refuses_anything_but_plain_data(payload):
    marker = Path("/tmp/ssd-unpickle-exploit")
    marker.unlink(missing_ok=True)
    encoded = base64.b64encode(zlib.compress(pickle.dumps(payload))).decode()
    if payload == b"ok":
        assert decode_compressed(encoded) == b"ok"
        return
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        decode_compressed(encoded)
    assert not marker.exists()


def test_malicious_private_tests_stop_the_loader_with_the_row_named(tmp_path):
    row = json.loads((LCB / "test.jsonl").read_text().splitlines()[0])
    row["private_test_cases"] = base64.b64encode(zlib.compress(pickle.dumps(Exploit()))).decode()
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1 private_test_cases.*refusing to load posix.system"):
        load_benchmark("livecodebench", [tmp_path / "bad.jsonl"])


def test_humaneval_comes_from_the_package_and_from_any_file():
    assert default_humaneval_path().name == "HumanEval.jsonl.gz"
    full = load_benchmark("humaneval")
    assert len(full) == 164 and full[0].id == "HumanEval/0" and full[0].kind == "script"
    mini = load_benchmark("humaneval", DATA / "HumanEvalMini.jsonl.gz")
    with gzip.open(DATA / "HumanEvalMini.jsonl.gz", "rt") as rows:
        first = json.loads(rows.readline())
    assert mini[0].starter_code == first["prompt"] and mini[0].entry_point == "add"
    assert mini[0].program_for("    return 1\n") == first["prompt"] + "    return 1\n"
    assert mini[0].check_program == first["test"] and mini[0].check_script.endswith("check(add)\n")
    assert mini[0].canonical_solution == first["canonical_solution"]
    assert load_benchmark("humaneval", limit=3)[-1].id == "HumanEval/2"


def test_livecodebench_prompt_is_its_generic_instruct_format():
    problems = {p.id: p for p in load_benchmark("livecodebench", LCB, release_version="release_v2")}
    system, user = benchmark_messages(problems["abc360_a"])
    assert system == {"role": "system", "content": SYSTEM_MESSAGE_GENERIC}
    assert user["content"] == (
        "### Question:\nGiven integers A and B on one line, print A+B.\n\n"
        "### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
        "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
        "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n")
    _, user = benchmark_messages(problems["3100"])
    assert ("### Format: You will use the following starter code to write the solution to the problem and enclose "
            "your code within delimiters.\n```python\nclass Solution:\n") in user["content"]
    assert benchmark_messages(problems["3100"], system_message=None)[0]["role"] == "user"


def test_unknown_benchmark_and_missing_path_are_explained():
    with pytest.raises(ValueError, match="unknown benchmark 'mbpp'"):
        load_benchmark("mbpp")
    with pytest.raises(ValueError, match="livecodebench needs a path"):
        load_benchmark("livecodebench")
