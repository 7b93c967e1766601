"""Grading agrees with known verdicts: LiveCodeBench stdin and functional tests, and HumanEval."""

import json
from pathlib import Path

import pytest

from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.prompts import extract_code
from ssd_jax.evaluation.grading import GradeResult, grade, stdout_matches, value_matches
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import load_benchmark

DATA = Path(__file__).parent / "data" / "evaluation"
LIMITS = Limits(timeout_s=3, memory_mb=1024, max_output_mb=4)


@pytest.fixture(scope="module")
def lcb_problems():
    return {p.id: p for p in load_benchmark("livecodebench", DATA / "livecodebench", release_version="release_v2")}


def first_failure(result: GradeResult) -> str:
    return next((v for v in result.verdicts if v != "pass"), "pass")


def test_livecodebench_verdicts_match_the_known_ones(lcb_problems):
    solutions = [json.loads(line) for line in (DATA / "solutions.jsonl").read_text().splitlines()]
    kinds = {lcb_problems[s["problem_id"]].kind for s in solutions}
    assert kinds == {"stdin", "functional"}
    jobs = [GradingJob(lcb_problems[s["problem_id"]], s["code"]) for s in solutions]
    results = grade_all(jobs, LIMITS, resolve_isolation(), workers=2, progress=False)
    got = [(s["problem_id"], first_failure(r)) for s, r in zip(solutions, results)]
    assert got == [(s["problem_id"], s["expected"]) for s in solutions]
    for result in results:
        assert result.passed == (first_failure(result) == "pass")
        if not result.passed:  # stops at the first failure
            failed = result.verdicts.index(first_failure(result))
            assert set(result.verdicts[failed + 1:]) <= {"not_run"}


def test_slow_solution_times_out_on_its_big_test_only(lcb_problems):
    slow = ("class Solution:\n    def maxSubarray(self, nums):\n        return max(sum(nums[i:j]) for i in range(len(nums))"
            " for j in range(i + 1, len(nums) + 1))")
    result = grade(lcb_problems["3200"], slow, Limits(timeout_s=1), resolve_isolation())
    assert result.status == "timeout" and result.verdicts[0] == "pass"
    assert "timeout" in result.verdicts and "per test 1s" in result.detail


def test_memory_and_output_limits_fail_a_test(lcb_problems):
    problem = lcb_problems["abc360_a"]
    hog = grade(problem, "x = [0] * (10**9)\nprint(1)", LIMITS, resolve_isolation())
    assert (hog.status, hog.verdicts[0]) == ("memory", "memory")
    chatty = grade(problem, "while True:\n    print('y' * 1000)", LIMITS, resolve_isolation())
    assert (chatty.status, chatty.verdicts[0]) == ("killed", "output_limit")


def test_program_never_sees_expected_outputs(lcb_problems, monkeypatch):
    from ssd_jax.evaluation.sandbox.session import Session

    sent = []
    original = Session.send
    monkeypatch.setattr(Session, "send", lambda self, message: (sent.append(json.dumps(message)), original(self, message))[1])
    for problem_id, code in (("abc360_a", "a, b = map(int, input().split())\nprint(a + b)"),
                             ("3100", "class Solution:\n    def twoSum(self, nums, target):\n        return sorted(range(2))")):
        problem = lcb_problems[problem_id]
        grade(problem, code, LIMITS, resolve_isolation())
        assert sent and not any(test.output.strip() in message for test in problem.tests for message in sent)
        sent.clear()


def test_all_humaneval_canonical_solutions_pass():
    problems = load_benchmark("humaneval")
    assert len(problems) == 164
    jobs = [GradingJob(p, p.canonical_solution) for p in problems]
    results = grade_all(jobs, Limits(timeout_s=10), resolve_isolation(), workers=2, progress=False)
    failed = [(p.id, r.detail) for p, r in zip(problems, results) if not r.passed]
    assert failed == []


def test_humaneval_wrong_and_cheating_completions_fail():
    problems = {p.id: p for p in load_benchmark("humaneval", DATA / "HumanEvalMini.jsonl.gz")}
    add, decode = problems["Mini/0"], problems["Mini/1"]
    cases = [
        (add, "    return sum(numbers)\n", True),  # a continuation of the prompt
        (add, "def add(numbers):\n    total = 0\n    for x in numbers:\n        total += x\n    return total", True),  # whole function
        (add, "    return 0\n", False),
        (add, "    import sys\n    sys.exit(0)\n", False),  # leaving before check() runs is a failure
        (add, "def add(numbers):\n    exit()\nadd([])", False),
        (decode, "    return encode_shift(encode_shift(s))\n", False),
        (decode, "def decode_shift(s):\n    return ''.join(chr((ord(c) - 5 - 97) % 26 + 97) for c in s)", True),
    ]
    jobs = [GradingJob(problem, code) for problem, code, _ in cases]
    results = grade_all(jobs, LIMITS, resolve_isolation(), workers=2, progress=False)
    assert [r.passed for r in results] == [expected for _, _, expected in cases]


@pytest.mark.parametrize("actual, expected, same", [
    ("3\n", "3\n", True), ("  3  \n\n", "3", True), ("0.50\n", "0.5\n", True), ("1 2.0\n", "1 2\n", True),
    ("1e2\n", "100\n", True), ("3\n", "4\n", False), ("1\n2\n", "1\n", False), ("abc\n", "abd\n", False),
    ("0.3333333\n", "0.33333333\n", False), ("nan\n", "nan\n", True), ("sNaN\n", "1\n", False), ("a b\n", "a  b\n", False),
])
def test_stdout_comparison_follows_livecodebench(actual, expected, same):
    assert stdout_matches(actual, expected) is same


def test_functional_comparison_normalises_tuples_through_json():
    assert value_matches(json.loads(json.dumps((1, (2, 3)))), [1, [2, 3]])
    assert not value_matches([1, 2], [2, 1]) and not value_matches({"__unserializable__": "{1}"}, [1])


@pytest.mark.parametrize("response, code", [
    ("Here:\n```python\nprint(1)\n```\n", "print(1)"),
    ("```python\nprint(1)\n```\ntext\n```\nprint(2)\n```", "print(2)"),
    ("no code at all", None), ("```python\nprint(1)", None), ("```\n\n```", None),
])
def test_code_is_the_last_fenced_block(response, code):
    assert extract_code(response) == code


def test_missing_code_fails_without_running(lcb_problems):
    [result] = grade_all([GradingJob(lcb_problems["abc360_a"], None)], LIMITS, resolve_isolation(), progress=False)
    assert (result.passed, result.status) == (False, "no_code")
    assert result.verdicts == ("not_run",) * len(lcb_problems["abc360_a"].tests)


def test_grader_failures_are_retried_once_then_recorded(lcb_problems, monkeypatch):
    from ssd_jax.evaluation import engine
    from ssd_jax.evaluation.sandbox.session import SandboxCrashed

    attempts = []
    real_grade = engine.grade

    def flaky_grade(problem, code, limits, isolation, session=None, runner="robust"):
        attempts.append(code)
        if session is not None:
            session.close()
        if code.startswith("#always") or len(attempts) == 1:
            raise SandboxCrashed("sandbox exited before its harness started")
        return real_grade(problem, code, limits, isolation)

    monkeypatch.setattr(engine, "grade", flaky_grade)
    problem = lcb_problems["abc360_a"]
    good = "a, b = map(int, input().split())\nprint(a + b)"
    results = grade_all([GradingJob(problem, good)], LIMITS, resolve_isolation(), workers=1, progress=False)
    assert results[0].passed and len(attempts) == 2
    results = grade_all([GradingJob(problem, "#always\n" + good), GradingJob(problem, good)], LIMITS,
                        resolve_isolation(), workers=2, progress=False)
    assert (results[0].passed, results[0].status) == (False, "error")
    assert "grader failed twice" in results[0].detail and results[1].passed
