"""Programs that try to forge their verdict are graded as failed (HumanEval/0, has_close_elements).

Every program below is wrong (it returns the same answer for every input) and tries to make the
grader believe otherwise: by writing "ok" replies to the harness's descriptors, by returning
an object equal to everything, by ending its own process once the checks have started, by
replacing `builtins.AssertionError`, by writing to every descriptor it can find.
"""

import base64

import pytest

from ssd_jax.evaluation.grading import grade
from ssd_jax.evaluation.reference_calls import NotPlainData, ReferenceCall, check_tolerances, read_literal, values_match
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import load_benchmark

LIMITS = Limits(timeout_s=3, memory_mb=1024, max_output_mb=4)
# "ok" replies for the first tests, in the harness's reply format (a child's report travels base64-encoded).
FORGED_REPORT = base64.b64encode(b'{"completed": true, "values": [], "value": true, "output": ""}')
FORGED = b"".join(b'{"index": %d, "status": "ok", "loaded": true, "completed": true, "value": true, "values": [], '
                  b'"output": "", "wall_s": 0.0, "report": "%s"}\n' % (index, FORGED_REPORT) for index in range(4))

REPLY_DESCRIPTOR_IN_ARGV = f'''
import marshal, os, sys, time

def has_close_elements(numbers, threshold):
    return False

config = marshal.loads(bytes.fromhex(sys.argv[1]))
for index in range(4):
    os.write(config["reply_fd"], {FORGED!r})
time.sleep(10)
'''

EQUAL_TO_EVERYTHING = '''
def has_close_elements(numbers, threshold):
    class Anything:
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        def __bool__(self):
            return True

        __hash__ = object.__hash__

    return Anything()
'''

KILLS_ITSELF_WITH_SIGKILL = f'''
import os, signal

def has_close_elements(numbers, threshold):
    for fd in range(3, 64):
        try:
            os.write(fd, {FORGED!r})
        except OSError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
'''

EXITS_ZERO_DURING_CHECKS = '''
import posix

def has_close_elements(numbers, threshold):
    posix._exit(0)
'''

REPLACES_ASSERTION_ERROR = '''
import builtins, sys

class NotAnError(Exception):
    pass

builtins.AssertionError = NotAnError
sys.excepthook = lambda *args: None

def has_close_elements(numbers, threshold):
    return False
'''

WRITES_TO_EVERY_DESCRIPTOR = f'''
import os

def has_close_elements(numbers, threshold):
    paths = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() or pid == "self":
            try:
                paths += [f"/proc/{{pid}}/fd/{{fd}}" for fd in os.listdir(f"/proc/{{pid}}/fd")]
            except OSError:
                pass
    for fd in range(256):
        try:
            os.write(fd, {FORGED!r})
        except OSError:
            pass
    for path in paths:
        try:
            with open(path, "wb", buffering=0) as stream:
                stream.write({FORGED!r})
        except OSError:
            pass
    return False
'''

FORGERIES = {
    "reply_descriptor_in_argv": REPLY_DESCRIPTOR_IN_ARGV,
    "equal_to_everything": EQUAL_TO_EVERYTHING,
    "kills_itself_with_sigkill": KILLS_ITSELF_WITH_SIGKILL,
    "exits_zero_during_checks": EXITS_ZERO_DURING_CHECKS,
    "replaces_assertion_error": REPLACES_ASSERTION_ERROR,
    "writes_to_every_descriptor": WRITES_TO_EVERY_DESCRIPTOR,
}


@pytest.fixture(scope="module")
def has_close_elements():
    return load_benchmark("humaneval", limit=1)[0]


def test_the_canonical_solution_passes(has_close_elements):
    result = grade(has_close_elements, has_close_elements.canonical_solution, LIMITS, resolve_isolation())
    assert result.passed, result.detail


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_verdicts_fail(has_close_elements, name):
    result = grade(has_close_elements, FORGERIES[name], LIMITS, resolve_isolation())
    print(f"{name}: passed={result.passed} status={result.status} verdicts={result.verdicts} "
          f"detail={result.detail[:160]!r}")
    assert not result.passed and result.verdicts[0] != "pass"


def test_returned_values_are_read_as_plain_data_only():
    assert read_literal("(1, [2.5, -inf], {'a': {3}}, set(), b'x', None, True)") == (
        1, [2.5, float("-inf")], {"a": {3}}, set(), b"x", None, True)
    for text in ("__import__('os').system('true')", "Anything()", "[x for x in ()]", "-'a'", "{**{}}"):
        with pytest.raises(NotPlainData):
            read_literal(text)


def test_return_values_compare_exactly_or_with_the_checks_tolerance():
    exact = [ReferenceCall((1,), {}, (1, 2))]
    assert values_match(["(1, 2)"], exact, "f") == (True, "")
    assert not values_match(["[1, 2]"], exact, "f")[0]  # a list is not the tuple the check compares with
    assert not values_match(["(1, 2)", "(1, 2)"], exact, "f")[0]
    assert not values_match([{"not_plain_data": "Anything is not plain data"}], exact, "f")[0]
    close = [ReferenceCall((1.33,), {}, 0.33000000000000007, tolerance=1e-6)]
    assert values_match(["0.33"], close, "truncate_number")[0]
    assert not values_match(["0.3301"], close, "truncate_number")[0]
    assert check_tolerances("def check(candidate):\n    assert abs(candidate(1.33) - 0.33) < 1e-6\n"
                            "    assert candidate(2) == 1\n") == {2: 1e-6}


def test_find_zero_accepts_any_root():
    # (x - 1)(x - 2)(x - 3): the canonical solution finds one root, a sample may find another.
    calls = [ReferenceCall(([-6, 11, -6, 1],), {}, 1.0000000000000002)]
    assert values_match(["3.0"], calls, "find_zero")[0] and values_match(["2.0"], calls, "find_zero")[0]
    assert not values_match(["2.5"], calls, "find_zero")[0]
