"""Grade one sample: its tests in children of one sandboxed harness, stopping at the first failure.

The harness (see sandbox/harness.py) receives the program once, then the evaluator sends one
test at a time and judges each reply itself: the harness observes how the test's process ended
(the status), and the program's output or return values come back as data compared here (output
matching, below; HumanEval in reference_calls.py). LiveCodeBench programs run after its import
prelude (`from collections import *`, `sys.setrecursionlimit(50000)`, …; see prelude.py).

`eval.grader` picks how a LiveCodeBench program runs:
- `robust`: a stdin program runs as `__main__` on a real file descriptor 0, once per test, and
  `exit()` ends it normally; a functional test calls `Solution().<func_name>(*args)` on a fresh
  instance (as LeetCode does; blank input lines are skipped) and compares the JSON-decoded
  return value, tuples at any depth as lists and dict keys as strings. Every test runs the
  program from scratch, so no state survives from one test to the next.
- `livecodebench`: exactly as LiveCodeBench's runner (`lcb_runner/evaluation/testing_util.py`)
  grades (see sandbox/harness_lcb.py), after its `reliability_guard`. A stdin program is wrapped in a function with patched
  stdin/stdout; a functional sample runs all its tests in one process on one `Solution()` (state
  carries from test to test), under its per-test alarm, each input line read as one JSON value
  (a blank line is an error there, so here too), and each return value (a tuple as a list, only
  at the top level) compared with `==` to the JSON-decoded answer. The comparison happens here,
  on the values as plain data of the built-in types (subclasses that compare as their base
  type does, such as defaultdict, Counter or a namedtuple, travel as that type): an object of
  any other type (which LiveCodeBench would compare in the program's own process, with the
  object's own `__eq__`) counts as a wrong answer. A pass needs every value right and the
  process's exit status 0.

A HumanEval sample passes when its return values on the calls the data set's check makes equal
the canonical solution's, and the check itself then runs to its end.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import json
import time
from typing import Any

from ssd_jax.evaluation.prelude import prelude_for
from ssd_jax.evaluation.reference_calls import REFERENCE_CALLS, NotPlainData, read_literal, values_match
from ssd_jax.evaluation.sandbox import classify
from ssd_jax.evaluation.sandbox.isolation import Isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.evaluation.sandbox.session import STARTUP_TIMEOUT_S, Session
from ssd_jax.problems.types import BenchmarkProblem

RUNNERS = ("robust", "livecodebench")
_STATUS_OF_VERDICT = {"pass": "ok", "wrong_answer": "ok", "error": "error", "timeout": "timeout",
                      "memory": "memory", "output_limit": "killed", "killed": "killed"}
_VERDICT_OF_STATUS = {"ok": "error", "error": "error", "timeout": "timeout", "memory": "memory", "killed": "killed"}
_REPLY_STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "killed")
_SHOWN_CHARS = 300
_EXIT_WAIT_S = 2.0


@dataclasses.dataclass(frozen=True)
class GradeResult:
    """The grading of one sample: `passed` only if every test passed."""

    passed: bool
    status: str  # ok | error | timeout | memory | killed, or no_code when nothing was extracted
    verdicts: tuple[str, ...]
    detail: str = ""
    wall_s: float = 0.0
    sandboxed: bool = True

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"verdicts": list(self.verdicts)}

    @classmethod
    def from_json(cls, data: dict) -> "GradeResult":
        return cls(**(data | {"verdicts": tuple(data["verdicts"])}))


def no_code_result(problem: BenchmarkProblem) -> GradeResult:
    """A response without a fenced code block fails without running anything."""
    return GradeResult(False, "no_code", ("not_run",) * num_tests(problem), "no fenced code block in the response")


def num_tests(problem: BenchmarkProblem) -> int:
    """LiveCodeBench: its tests. HumanEval: the recorded calls (one test), then the check."""
    return 2 if problem.kind == "script" else len(problem.tests)


def _shown(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS // 2] + " … " + text[-_SHOWN_CHARS // 2:]


class UnreadableByLiveCodeBench(ValueError):
    """A functional test input LiveCodeBench's runner cannot read (a blank line): it fails every sample."""


def _lcb_arguments(problem: BenchmarkProblem, index: int, text: str) -> list:
    """A functional test's arguments as LiveCodeBench reads them: every line is one JSON value."""
    try:
        return [json.loads(line) for line in text.split("\n")]
    except ValueError as error:
        raise UnreadableByLiveCodeBench(
            f"test {index}: LiveCodeBench reads every input line as one JSON value, and fails the sample "
            f"on this one ({error})") from None


def _test_commands(problem: BenchmarkProblem, isolation: Isolation, runner: str) -> list[tuple[dict, object]]:
    """(command sent to the harness, expected answer kept here) for each test; with the
    `livecodebench` runner a functional sample's tests are one command (a `suite`)."""
    if problem.kind == "script":
        calls = REFERENCE_CALLS.get(problem, isolation)
        return [({"op": "test", "index": 0, "entry_point": problem.entry_point,
                  "calls": [(call.args, call.kwargs) for call in calls]}, calls),
                ({"op": "test", "index": 1, "check": problem.check_script}, None)]
    commands = []
    for index, test in enumerate(problem.tests):
        if problem.kind == "stdin":
            commands.append(({"op": "test", "index": index, "input": test.input}, test.output))
            continue
        try:
            args = [json.loads(line) for line in test.input.split("\n") if line.strip()]
            expected = json.loads(test.output)
        except ValueError as error:
            raise ValueError(f"problem {problem.id} test {index}: functional input/output is not JSON ({error})") from None
        commands.append(({"op": "test", "index": index, "args": args}, expected))
    if problem.kind == "functional" and runner == "livecodebench":
        suite = [_lcb_arguments(problem, index, test.input) for index, test in enumerate(problem.tests)]
        return [({"op": "test", "index": 0, "suite": suite}, [expected for _, expected in commands])]
    return commands


def _report(reply: dict) -> dict | None:
    """The child's report inside a reply: untrusted bytes, decoded here; None if unreadable."""
    try:
        report = json.loads(base64.b64decode(reply.get("report", ""), validate=True) or b"{}")
    except (ValueError, TypeError, RecursionError):
        return None
    return report if isinstance(report, dict) else None


def _judge(problem: BenchmarkProblem, command: dict, reply: dict, expected) -> tuple[str, str]:
    """(verdict, detail) of one test's reply. The status is the harness's observation of the
    test's process; the report is only ever the program's output or return values, judged here."""
    if "protocol_error" in reply or reply.get("status") not in _REPLY_STATUSES:
        return "error", f"harness protocol broken: {_shown(str(reply))}"
    report = _report(reply)
    if reply["status"] != "ok":
        why = report.get("error") if report and isinstance(report.get("error"), str) else reply.get("detail", "")
        return reply["status"], why
    if report is None:
        return "error", "the test left no readable report"
    if problem.kind == "stdin":
        actual = report.get("output")
        ok = isinstance(actual, str) and stdout_matches(actual, expected)
    elif problem.kind == "functional":
        actual = report.get("value")
        ok = "value" in report and value_matches(actual, expected)
    elif "calls" in command:
        if "values" not in report:
            return "error", "the program ended before its calls returned"
        ok, why = values_match(report["values"], expected, problem.entry_point)
        return ("pass", "") if ok else ("wrong_answer", why)
    else:
        return ("pass", "") if report.get("completed") is True else ("error", "the check did not run to its end")
    if ok:
        return "pass", ""
    return "wrong_answer", f"expected {_shown(expected)}, got {_shown(actual)}"


def _judge_suite(reply: dict, expected: list) -> tuple[list[str], str]:
    """(verdicts, detail) of a `livecodebench` functional sample, run as one suite: the values
    the calls returned, in order, compared here; the first test without a right value failed,
    with the status of the process (a pass needs every value and exit status 0)."""
    verdicts = ["not_run"] * len(expected)
    if "protocol_error" in reply or reply.get("status") not in _REPLY_STATUSES:
        verdicts[0] = "error"
        return verdicts, f"test 0: error: harness protocol broken: {_shown(str(reply))}"
    report = _report(reply)
    values = report.get("values") if report else None
    if not isinstance(values, list) or len(values) > len(expected):
        values = []
    for index, (text, answer) in enumerate(zip(values, expected)):
        try:  # a value is a literal of plain data, or a marker saying why it is not
            right = isinstance(text, str) and bool(read_literal(text) == answer)
        except (NotPlainData, RecursionError, MemoryError):
            right = False
        if not right:
            verdicts[index] = "wrong_answer"
            return verdicts, f"test {index}: wrong_answer: expected {_shown(answer)}, got {_shown(text)}"
        verdicts[index] = "pass"
    if len(values) == len(expected) and reply["status"] == "ok":
        return verdicts, ""
    index = min(len(values), len(expected) - 1)
    verdicts[index] = reply["status"] if reply["status"] != "ok" else "error"
    why = report.get("error") if report and isinstance(report.get("error"), str) else reply.get("detail", "")
    if reply["status"] == "ok":
        why = "the program ended before this test's call returned"
    return verdicts, f"test {index}: {verdicts[index]}: {why}"


# -- output matching: whether a test's actual output is right, by LiveCodeBench's rules ------------
# Comparison happens here, never inside the sandbox: the program only ever sees its inputs, so it
# cannot read or forge the expected answers.
def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[decimal.Decimal] | None:
    try:
        return [decimal.Decimal(token) for token in line.split()]
    except (decimal.InvalidOperation, ValueError):
        return None


def stdout_matches(actual: str, expected: str) -> bool:
    """stdin tests: same number of lines after stripping the whole text; each stripped line
    equal, or else equal as whitespace-separated decimal numbers (so `0.50` matches `0.5`)."""
    actual_lines, expected_lines = _stripped_lines(actual), _stripped_lines(expected)
    if len(actual_lines) != len(expected_lines):
        return False
    for got, want in zip(actual_lines, expected_lines):
        if got == want:
            continue
        got_numbers, want_numbers = _decimals(got), _decimals(want)
        if got_numbers is None or want_numbers is None:
            return False
        try:
            if got_numbers != want_numbers:
                return False
        except decimal.InvalidOperation:  # signalling NaN
            return False
    return True


def value_matches(actual: Any, expected: Any) -> bool:
    """functional tests: the JSON-decoded return value (tuples already lists) equals the answer."""
    return actual == expected


def start_session(limits: Limits, isolation: Isolation) -> Session:
    """A sandbox ready to grade any sample under `limits` (the sample's own limits come with `load`)."""
    return Session(isolation, limits)


def grade(problem: BenchmarkProblem, code: str, limits: Limits, isolation: Isolation,
          session: Session | None = None, runner: str = "robust") -> GradeResult:
    """Runs `code` against every test of `problem` in one sandbox; stops at the first failure.

    `runner` (`eval.grader`) says how a LiveCodeBench program runs: `robust` or `livecodebench`
    (exactly as LiveCodeBench's runner does; see the module docstring). Both run inside the sandbox.

    `session` is a sandbox started ahead by `start_session` (else one is started here); it is
    used for this sample only and closed. Raises SandboxCrashed when the sandbox could not
    start (the engine retries those).
    """
    if runner not in RUNNERS:
        raise ValueError(f"config.eval.grader={runner!r}: choose one of {RUNNERS}")
    try:
        commands = _test_commands(problem, isolation, runner)
    except UnreadableByLiveCodeBench as error:
        if session is not None:
            session.close()
        verdicts = ("error",) + ("not_run",) * (len(problem.tests) - 1)
        return GradeResult(False, "error", verdicts, str(error), 0.0, isolation.sandboxed)
    except BaseException:
        if session is not None:
            session.close()
        raise
    if not commands:
        raise ValueError(f"problem {problem.id} has no tests; a sample cannot pass vacuously")
    suite = "suite" in commands[0][0]  # all tests in one process, under the runner's own per-test alarm
    num = len(problem.tests) if suite else len(commands)
    sample_deadline_s = limits.sample_deadline_s(num)
    sample_limits = limits.with_room_for(max((len(t.input.encode()) for t in problem.tests), default=0))
    load = {"op": "load", "kind": problem.kind, "runner": runner, "timeout_s": limits.timeout_s,
            "rlimits": sample_limits.rlimits(cpu_s=sample_deadline_s if suite else None),
            "max_output_bytes": sample_limits.max_output_bytes, "func_name": problem.func_name,
            "code": problem.program_for(code) if problem.kind == "script" else code,
            "prelude": "" if problem.kind == "script" else prelude_for(code, isolation)}
    verdicts = ["not_run"] * num
    detail, unanswered = "", None
    session = session or start_session(limits, isolation)
    with session:
        session.wait_ready(time.monotonic() + STARTUP_TIMEOUT_S)
        sample_deadline = time.monotonic() + sample_deadline_s
        session.send(load)
        reply = session.receive(min(sample_deadline, time.monotonic() + limits.timeout_s))
        if reply is None:
            unanswered = "loading the program"
        elif not reply.get("loaded"):
            verdicts[0] = reply.get("status", "error")
            detail = f"loading the program: {reply.get('error', reply)}"
        else:
            for index, (command, expected) in enumerate(commands):
                session.send(command)
                reply = session.receive(sample_deadline if suite else
                                        min(sample_deadline, time.monotonic() + limits.timeout_s))
                if reply is None:
                    unanswered = "0 (all tests run in one process)" if suite else index
                    break
                if suite:
                    verdicts, detail = _judge_suite(reply, expected)
                    break
                verdicts[index], why = _judge(problem, command, reply, expected)
                if verdicts[index] != "pass":
                    detail = f"test {index}: {verdicts[index]}: {why}"
                    break
        outcome = session.finish(time.monotonic() + _EXIT_WAIT_S)
    if unanswered is not None:
        status, why = classify(outcome, isolation, sample_limits)
        if outcome.kill_reason == "timeout":
            why = (f"wall-clock limit (per test {limits.timeout_s:g}s, "
                   f"per sample {sample_deadline_s:g}s)")
        stderr = outcome.stderr.decode(errors="replace")[-_SHOWN_CHARS:]
        index = unanswered if isinstance(unanswered, int) else 0
        verdicts[index] = _VERDICT_OF_STATUS[status]
        detail = f"test {unanswered}: {verdicts[index]}: {why} {stderr}".strip()
    first_failure = next((v for v in verdicts if v != "pass"), "pass")
    passed = all(v == "pass" for v in verdicts)
    status = "ok" if passed else _STATUS_OF_VERDICT.get(first_failure, "error")
    return GradeResult(passed, status, tuple(verdicts), detail, outcome.wall_s, isolation.sandboxed)
