"""`eval.grader`: the `livecodebench` runner gives the verdicts LiveCodeBench's own runner gives
(stdin: its `grade_stdio`, the program wrapped in a function, stdin/stdout patched with
StringIOs; functional: its `grade_call_based`); `robust` runs a stdin program as `__main__` on a
real file descriptor 0 and calls a functional program on a fresh instance per test. Both run in
the sandbox.

EXPECTED holds, per stdin program, the verdict of each runner. The `livecodebench` column is
what LiveCodeBench's `lcb_runner/evaluation/testing_util.py` (`clean_if_name`, `make_function`,
`call_method`, `Capturing`, run in a multiprocessing worker as its evaluator does) returned for
these programs on these tests: pass, Runtime Error (`error` here) or Wrong Answer; the last
three rows are derived from its `reliability_guard` (`resource` made unimportable, `quit` None,
`exit` kept) and `call_method` (which swallows SystemExit).

FUNCTIONAL_EXPECTED holds the same for functional programs, and each of its verdicts is also
derived independently here: `lcb_reference_verdict` is LiveCodeBench's `grade_call_based`
(with `compile_code`, `get_function` and `run_test`'s handling of its errors) transcribed, and
`robust_reference_verdict` the robust runner's rules; both run these trusted programs, written
for this test, in this process (never a sample's program).
"""

import base64
import builtins
import contextlib
import json
import signal
import sys
import types

import pytest

from ssd_jax.evaluation.grading import grade
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems.types import BenchmarkProblem, IOTest

SUM = BenchmarkProblem(
    id="sum", source="test", title="Sum", statement="Print the sum of the n numbers.", starter_code="",
    difficulty="easy", kind="stdin",
    tests=(IOTest("3\n1 2 3\n", "6\n", "stdin"), IOTest("2\n5 7\n", "12\n", "stdin")),
)
PROGRAMS = {
    "input()": "n = int(input())\nprint(sum(map(int, input().split())))",
    "sys.stdin.buffer": "import sys\ndata = sys.stdin.buffer.read().split()\nprint(sum(map(int, data[1:])))",
    "os.read(0)": "import os\ndata = os.read(0, 1 << 20).split()\nprint(sum(map(int, data[1:])))",
    "for line in sys.stdin": "import sys\nlines = [line for line in sys.stdin]\nprint(sum(map(int, lines[1].split())))",
    "for line in stdin (from sys import stdin)":
        "from sys import stdin\nlines = [line for line in stdin]\nprint(sum(map(int, lines[1].split())))",
    "module-level global":
        "total = 0\ndef add(x):\n    global total\n    total += x\nn = int(input())\n"
        "for v in input().split():\n    add(int(v))\nprint(total)",
    "sys.stdout.buffer.write":
        "import sys\nn = int(input())\nsys.stdout.buffer.write(str(sum(map(int, input().split()))).encode() + b'\\n')",
    "if __name__ == '__main__'":
        "def main():\n    n = int(input())\n    print(sum(map(int, input().split())))\n"
        "if __name__ == '__main__':\n    main()",
    "import resource (to raise the stack limit)":
        "import resource\nresource.setrlimit(resource.RLIMIT_STACK, resource.getrlimit(resource.RLIMIT_STACK))\n"
        "n = int(input())\nprint(sum(map(int, input().split())))",
    "quit() at the end": "n = int(input())\nprint(sum(map(int, input().split())))\nquit()",
    "exit() at the end": "n = int(input())\nprint(sum(map(int, input().split())))\nexit()",
}
EXPECTED = {  # program: (robust, livecodebench) — the first test's verdict
    "input()": ("pass", "pass"),
    "sys.stdin.buffer": ("pass", "error"),  # StringIO has no .buffer
    "os.read(0)": ("pass", "wrong_answer"),  # fd 0 is empty (/dev/null in its workers): prints 0
    "for line in sys.stdin": ("pass", "pass"),  # iterates the patched StringIO
    "for line in stdin (from sys import stdin)": ("pass", "error"),  # bound before the patch: empty
    "module-level global": ("pass", "error"),  # `total` is a local of wrapped_function: NameError
    "sys.stdout.buffer.write": ("pass", "error"),  # StringIO has no .buffer
    "if __name__ == '__main__'": ("pass", "pass"),  # a trailing main guard is unwrapped
    "import resource (to raise the stack limit)": ("pass", "error"),  # reliability_guard: sys.modules["resource"] = None
    "quit() at the end": ("pass", "error"),  # reliability_guard: builtins.quit = None
    "exit() at the end": ("pass", "pass"),  # exit stays; call_method swallows its SystemExit
}
LIMITS = Limits(timeout_s=10, memory_mb=1024, max_output_mb=4)  # roomy: no program here runs long


@pytest.mark.parametrize("runner", ["robust", "livecodebench"])
def test_each_runner_gives_each_program_its_runners_verdict(runner):
    isolation = resolve_isolation()
    column = 0 if runner == "robust" else 1
    got = {name: grade(SUM, code, LIMITS, isolation, runner=runner) for name, code in PROGRAMS.items()}
    verdicts = {name: result.verdicts[0] for name, result in got.items()}
    assert verdicts == {name: expected[column] for name, expected in EXPECTED.items()}
    assert all(result.sandboxed == isolation.sandboxed for result in got.values())
    assert all(result.passed == (EXPECTED[name][column] == "pass") for name, result in got.items())


def test_the_livecodebench_runner_still_runs_the_program_inside_the_sandbox():
    """The program looks for this test file: visible on the host, absent inside the sandbox."""
    isolation = resolve_isolation()
    assert isolation.sandboxed
    look = f"import os\nprint(os.path.exists({__file__!r}))"
    problem = BenchmarkProblem(id="look", source="test", title="look", statement="", starter_code="",
                               difficulty="easy", kind="stdin", tests=(IOTest("", "False\n", "stdin"),))
    result = grade(problem, look, LIMITS, isolation, runner="livecodebench")
    assert result.sandboxed and result.passed, result.detail


def test_an_unknown_runner_is_named():
    with pytest.raises(ValueError, match="config.eval.grader='lcb'"):
        grade(SUM, "print(6)", LIMITS, resolve_isolation(), runner="lcb")


# -- functional programs -----------------------------------------------------------------------
def functional(name: str, tests: tuple[tuple[str, str], ...]) -> BenchmarkProblem:
    return BenchmarkProblem(id=name, source="test", title=name, statement="", starter_code="", difficulty="easy",
                            kind="functional", func_name=name,
                            tests=tuple(IOTest(given, answer, "functional") for given, answer in tests))


HALVES = functional("halves", (("5", "[2, 3]"), ("8", "[4, 4]")))
HALVES_TRAILING_NEWLINE = functional("halves", (("5\n", "[2, 3]"), ("8\n", "[4, 4]")))
PAIRS = functional("pairs", (("2", "[[0, 2], [1, 1], [2, 0]]"), ("1", "[[0, 1], [1, 0]]")))
COUNTS = functional("counts", (("[1, 1, 2]", '{"1": 2, "2": 1}'), ("[3]", '{"3": 1}')))
ADD = functional("add", (("0.1\n0.2", "0.3"), ("1\n2", "3")))
RIGHT_HALVES = "class Solution:\n    def halves(self, n):\n        return [n // 2, n - n // 2]\n"
FUNCTIONAL_PROGRAMS = {  # name: (problem, program)
    "right answer": (HALVES, RIGHT_HALVES),
    "tuple returned at the top level": (
        HALVES, "class Solution:\n    def halves(self, n):\n        return n // 2, n - n // 2\n"),
    "tuples nested in the list": (
        PAIRS, "class Solution:\n    def pairs(self, n):\n        return [(i, n - i) for i in range(n + 1)]\n"),
    "dict with int keys": (
        COUNTS, "class Solution:\n    def counts(self, nums):\n        return {x: nums.count(x) for x in nums}\n"),
    "defaultdict with str keys": (
        COUNTS, "from collections import defaultdict\nclass Solution:\n    def counts(self, nums):\n"
                "        seen = defaultdict(int)\n        for x in nums:\n            seen[str(x)] += 1\n"
                "        return seen\n"),
    "state kept in the instance": (
        HALVES, "class Solution:\n    def __init__(self):\n        self.answer = None\n"
                "    def halves(self, n):\n        if self.answer is None:\n"
                "            self.answer = [n // 2, n - n // 2]\n        return self.answer\n"),
    "state kept in a module global": (
        HALVES, "answer = None\nclass Solution:\n    def halves(self, n):\n        global answer\n"
                "        if answer is None:\n            answer = [n // 2, n - n // 2]\n        return answer\n"),
    "'class Solution' only in a comment": (
        HALVES, "# no class Solution needed: a plain function\ndef halves(n):\n    return [n // 2, n - n // 2]\n"),
    "float sum off in the last digit": (ADD, "class Solution:\n    def add(self, a, b):\n        return a + b\n"),
    "float sum rounded": (ADD, "class Solution:\n    def add(self, a, b):\n        return round(a + b, 9)\n"),
    "input with a trailing newline": (HALVES_TRAILING_NEWLINE, RIGHT_HALVES),
    "imports resource": (HALVES, "import resource\n" + RIGHT_HALVES),
    "catches the timeout": (
        HALVES, "class Solution:\n    def halves(self, n):\n        try:\n            while True:\n"
                "                pass\n        except Exception:\n            return [n // 2, n - n // 2]\n"),
}
FUNCTIONAL_EXPECTED = {  # program: (robust, livecodebench) — the first failing test's verdict, else pass
    "right answer": ("pass", "pass"),
    "tuple returned at the top level": ("pass", "pass"),  # both turn a returned tuple into a list
    "tuples nested in the list": ("pass", "wrong_answer"),  # LiveCodeBench: only the top level; [(0, 2)] != [[0, 2]]
    "dict with int keys": ("pass", "wrong_answer"),  # robust's JSON makes keys strings; {1: 2} != {"1": 2}
    "defaultdict with str keys": ("pass", "pass"),  # a dict subclass compares as a dict
    "state kept in the instance": ("pass", "wrong_answer"),  # one Solution() for every test: test 1 gets [2, 3]
    "state kept in a module global": ("pass", "wrong_answer"),  # one module for every test
    "'class Solution' only in a comment": ("pass", "error"),  # the text decides: tmp_sol.Solution is missing
    "float sum off in the last digit": ("wrong_answer", "wrong_answer"),  # both compare floats with ==
    "float sum rounded": ("pass", "pass"),
    "input with a trailing newline": ("pass", "error"),  # json.loads("") fails the sample there
    "imports resource": ("pass", "error"),  # reliability_guard: sys.modules["resource"] = None
    "catches the timeout": ("timeout", "pass"),  # its alarm raises an Exception the program catches
}
TIMEOUT_S = 1  # the per-test limit of "catches the timeout", which spends it on each test under livecodebench


def limits_for(name: str) -> Limits:
    return Limits(timeout_s=TIMEOUT_S, memory_mb=1024, max_output_mb=4) if name == "catches the timeout" else LIMITS


class KilledFromOutside(BaseException):
    """The robust runner's wall-clock kill, as the reference models it (no program can catch it)."""


class TimeoutException(Exception):
    """LiveCodeBench's alarm exception (its name is what its runner looks for)."""


def run_with_alarm(action, exception):
    def ring(signum, frame):
        raise exception()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(TIMEOUT_S)
    try:
        return action()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def reliability_guard():
    """The part of LiveCodeBench's `reliability_guard` these programs meet (`resource` cannot be
    imported, `quit` is None), undone afterwards since it runs in this process."""
    saved_resource, saved_quit = sys.modules.pop("resource", None), builtins.__dict__.get("quit")
    sys.modules["resource"], builtins.quit = None, None
    try:
        yield
    finally:
        del sys.modules["resource"]
        if saved_resource is not None:
            sys.modules["resource"] = saved_resource
        builtins.quit = saved_quit


def lcb_reference_verdict(problem: BenchmarkProblem, code: str) -> str:
    """LiveCodeBench's `grade_call_based` on one trusted program (transcribed): the prelude (the
    names these programs need), the code run under its guard as a fresh module `tmp_sol`, one `Solution()` if
    the text says `class Solution`, the method looked up once; then each test's lines parsed as
    JSON and passed positionally, a tuple made a list, `==`, stopping at the first failure.
    An error outside the per-test loop fails the sample (`run_test` returns [-4])."""
    try:
        module = types.ModuleType("tmp_sol", "")
        with reliability_guard():
            exec("from collections import *\n\n" + code, module.__dict__)
        solution = module.Solution() if "class Solution" in code else module
        method = getattr(solution, problem.func_name)
        inputs = [[json.loads(line) for line in test.input.split("\n")] for test in problem.tests]
        outputs = [json.loads(test.output) for test in problem.tests]
    except Exception:
        return "error"
    for arguments, answer in zip(inputs, outputs):
        try:
            prediction = run_with_alarm(lambda: method(*arguments), TimeoutException)
        except Exception as error:
            return "timeout" if "timeoutexception" in repr(error).lower() else "error"
        if isinstance(prediction, tuple):
            prediction = list(prediction)
        if not prediction == answer:
            return "wrong_answer"
    return "pass"


def robust_reference_verdict(problem: BenchmarkProblem, code: str) -> str:
    """The robust runner's rules on one trusted program: per test the program run afresh as module
    `solution`, `Solution().<name>(*args)` on a fresh instance (else the function), blank input
    lines skipped, the value compared after a JSON round trip (tuples as lists at any depth, keys
    as strings), the test killed from outside at the wall-clock limit."""
    for test in problem.tests:
        arguments = [json.loads(line) for line in test.input.split("\n") if line.strip()]
        namespace = {"__name__": "solution"}
        exec("from collections import *\n" + code, namespace)
        solution = namespace.get("Solution")
        function = getattr(solution(), problem.func_name) if isinstance(solution, type) else namespace[problem.func_name]
        try:
            value = run_with_alarm(lambda: function(*arguments), KilledFromOutside)
        except KilledFromOutside:
            return "timeout"
        if json.loads(json.dumps(value)) != json.loads(test.output):
            return "wrong_answer"
    return "pass"


def test_the_reference_runners_give_the_listed_functional_verdicts():
    got = {name: (robust_reference_verdict(*program), lcb_reference_verdict(*program))
           for name, program in FUNCTIONAL_PROGRAMS.items()}
    assert got == FUNCTIONAL_EXPECTED


@pytest.mark.parametrize("runner", ["robust", "livecodebench"])
def test_each_runner_gives_each_functional_program_its_runners_verdict(runner):
    isolation, column = resolve_isolation(), 0 if runner == "robust" else 1
    got = {name: grade(problem, code, limits_for(name), isolation, runner=runner)
           for name, (problem, code) in FUNCTIONAL_PROGRAMS.items()}
    verdicts = {name: next((v for v in result.verdicts if v != "pass"), "pass") for name, result in got.items()}
    assert verdicts == {name: expected[column] for name, expected in FUNCTIONAL_EXPECTED.items()}
    for name, result in got.items():
        assert result.passed == (FUNCTIONAL_EXPECTED[name][column] == "pass") and result.sandboxed == isolation.sandboxed
        if not result.passed:  # stops at the first failure
            failed = result.verdicts.index(verdicts[name])
            assert set(result.verdicts[failed + 1:]) <= {"not_run"}, result.verdicts
    # state carried over: the second test is the one that fails
    assert got["state kept in the instance"].verdicts == (("pass", "pass") if runner == "robust"
                                                         else ("pass", "wrong_answer"))


EQUAL_TO_EVERYTHING = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                       "class Solution:\n    def halves(self, n):\n        return Anything()\n")


def test_an_object_with_its_own_eq_is_wrong_though_livecodebench_would_let_it_pass():
    """The one deliberate departure: LiveCodeBench compares in the program's own process, so
    an object whose `__eq__` says True passes there; here the answer never enters the sandbox."""
    assert lcb_reference_verdict(HALVES, EQUAL_TO_EVERYTHING) == "pass"
    result = grade(HALVES, EQUAL_TO_EVERYTHING, LIMITS, resolve_isolation(), runner="livecodebench")
    assert result.verdicts == ("wrong_answer", "not_run") and "not plain data" in result.detail


FORGED_REPORT = b'{"values": ["[2, 3]", "[4, 4]"], "value": [2, 3], "output": "", "completed": true}'
FORGED_REPLY = b'{"index": 0, "status": "ok", "loaded": true, "report": "%s"}\n' % base64.b64encode(FORGED_REPORT)
FUNCTIONAL_FORGERIES = {  # each returns wrong answers, or none, and tries to be believed otherwise: (program, verdicts)
    "writes right values and 'ok' replies everywhere, returns wrong ones": (
        "import os\nclass Solution:\n    def halves(self, n):\n        for fd in range(256):\n"
        f"            for data in ({FORGED_REPORT!r}, {FORGED_REPLY!r}):\n"
        "                try:\n                    os.write(fd, data)\n                except OSError:\n"
        "                    pass\n        return [0, 0]\n",
        ("wrong_answer", "not_run")),
    "writes test 0's right value to its report, then exits 0 before returning": (
        "import os, posix\nclass Solution:\n    def halves(self, n):\n        for fd in range(3, 256):\n"
        "            try:\n                os.ftruncate(fd, 0)\n"
        "                os.pwrite(fd, b'{\"values\": [\"[2, 3]\"]}', 0)\n            except OSError:\n"
        "                pass\n        posix._exit(0)\n",
        ("pass", "error")),  # its report's one value, then exit 0: the second test never returned
    "writes right values to its report, then kills itself": (
        "import os, posix, signal\nclass Solution:\n    def halves(self, n):\n        for fd in range(3, 256):\n"
        "            try:\n                os.ftruncate(fd, 0)\n"
        f"                os.pwrite(fd, {FORGED_REPORT!r}, 0)\n            except OSError:\n"
        "                pass\n        posix.kill(os.getpid(), signal.SIGKILL)\n",  # os.kill is guarded
        ("pass", "killed")),  # two right values in its report, but waitpid says killed
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL_FORGERIES))
def test_forged_functional_verdicts_fail_under_the_livecodebench_runner(name):
    """A report is only the values the program produced; a pass also needs exit status 0 from
    waitpid, and the status that fails a test is always the one waitpid gave."""
    result = grade(HALVES, FUNCTIONAL_FORGERIES[name][0], LIMITS, resolve_isolation(), runner="livecodebench")
    print(f"{name}: passed={result.passed} verdicts={result.verdicts} detail={result.detail[:160]!r}")
    assert not result.passed and result.verdicts == FUNCTIONAL_FORGERIES[name][1]
