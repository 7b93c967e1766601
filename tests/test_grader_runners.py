"""`eval.grader`: the `livecodebench` runner gives the verdicts LiveCodeBench's own runner gives
(its `grade_stdio`: the program wrapped in a function, stdin/stdout patched with StringIOs);
`robust` runs the program as `__main__` on a real file descriptor 0. Both run in the sandbox.

EXPECTED holds, per program, the verdict of each runner. The `livecodebench` column is what
LiveCodeBench's `lcb_runner/evaluation/testing_util.py` (`clean_if_name`, `make_function`,
`call_method`, `Capturing`, run in a multiprocessing worker as its evaluator does) returned for
these programs on these tests: pass, Runtime Error (`error` here) or Wrong Answer.
"""

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
}
LIMITS = Limits(timeout_s=3, memory_mb=1024, max_output_mb=4)


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
