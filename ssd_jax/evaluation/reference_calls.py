"""HumanEval graded outside the sandbox, as EvalPlus does: recorded calls, compared return values.

Once per problem, a trusted run (the data set's canonical solution and its `check`, in the
sandbox all the same) records every `candidate(...)` call the check makes: the arguments and the
canonical solution's return value, as Python literals. A sample is then called on those
arguments in the sandbox; its return values leave as literals of plain data (exactly the
built-in types, so no object can carry its own `__eq__`), and `values_match` compares them here
with the canonical ones: exactly, or with the check's own tolerance where it compares floats as
`abs(candidate(...) - expected) < tol`. `find_zero` (HumanEval/32) is checked by its property,
|poly(xs, x)| < 1e-4, as its check and EvalPlus do, since any root is right.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from ssd_jax.evaluation import sandbox
from ssd_jax.evaluation.sandbox.isolation import Isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems.types import BenchmarkProblem

FIND_ZERO_TOLERANCE = 1e-4
_RECORD_LIMITS = Limits(timeout_s=300, memory_mb=4096, max_output_mb=256)
_RECORDER = r'''
import json, sys

def record(problem):
    calls = []
    namespace = {"__name__": "__main__"}
    exec(compile(problem["program"], "<program>", "exec"), namespace)
    function = namespace[problem["entry_point"]]

    def candidate(*args, **kwargs):
        frame = sys._getframe(1)
        line = frame.f_lineno if frame.f_code.co_filename == "<check>" else 0
        call = {"args": repr(args), "kwargs": repr(kwargs), "line": line}
        value = function(*args, **kwargs)
        call["result"] = repr(value)
        calls.append(call)
        return value

    exec(compile(problem["check"], "<check>", "exec"), namespace)
    namespace["check"](candidate)
    return calls

for problem in json.load(sys.stdin):
    print(json.dumps({"id": problem["id"], "calls": record(problem)}))
'''


class NotPlainData(ValueError):
    """A literal that is not plain data (or not a literal at all)."""


@dataclasses.dataclass(frozen=True)
class ReferenceCall:
    """One `candidate(...)` call of a check: arguments, the canonical return value, and the
    tolerance the check compares it with (None: exactly)."""

    args: tuple
    kwargs: dict
    expected: Any
    tolerance: float | None = None


def read_literal(text: str) -> Any:
    """The plain data a harness literal describes: numbers (with `inf`, `nan`), strings, bytes,
    booleans, None, and tuples, lists, sets and dicts of them. Raises NotPlainData otherwise;
    nothing is evaluated."""
    try:
        tree = ast.parse(text, mode="eval").body
        return _plain(tree)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as error:
        if isinstance(error, NotPlainData):
            raise
        raise NotPlainData(f"not a literal of plain data ({type(error).__name__})") from None


def _plain(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str, bytes, bool, type(None)):
        return node.value
    if isinstance(node, ast.Name) and node.id in ("inf", "nan"):
        return float(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _plain(node.operand)
        if type(value) not in (int, float):
            raise NotPlainData("a sign before something that is not a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Tuple):
        return tuple(_plain(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_plain(item) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_plain(item) for item in node.elts}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "set" \
            and not node.args and not node.keywords:
        return set()
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_plain(key): _plain(value) for key, value in zip(node.keys, node.values)}
    raise NotPlainData(f"{type(node).__name__} is not plain data")


def check_tolerances(check_program: str) -> dict[int, float]:
    """Line → tolerance, for the lines of a check that assert `abs(...candidate(...)...) < tol`
    (or `math.fabs`, or `<=`)."""
    tolerances = {}
    for node in ast.walk(ast.parse(check_program)):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Lt, ast.LtE))):
            continue
        left, right = node.left, node.comparators[0]
        if not (isinstance(left, ast.Call) and _called_name(left) in ("abs", "fabs")
                and isinstance(right, ast.Constant) and type(right.value) in (int, float)):
            continue
        for inner in ast.walk(left):
            if isinstance(inner, ast.Call) and _called_name(inner) == "candidate":
                tolerances[inner.lineno] = float(right.value)
    return tolerances


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def record_reference_calls(problems: Sequence[BenchmarkProblem], isolation: Isolation) -> dict[str, tuple[ReferenceCall, ...]]:
    """Problem id → the calls its check makes, recorded in one trusted sandbox run of the
    canonical solutions. Raises ValueError naming the problem when one cannot be recorded."""
    missing = [p.id for p in problems if not p.canonical_solution.strip()]
    if missing:
        raise ValueError(f"{', '.join(missing[:5])}: no canonical_solution in the data file; HumanEval grading "
                         f"records the check's calls from it (use a file with that field)")
    request = [{"id": p.id, "program": p.program_for(p.canonical_solution), "check": p.check_program,
                "entry_point": p.entry_point} for p in problems]
    result = sandbox.run(_RECORDER, json.dumps(request), limits=_RECORD_LIMITS,
                         allow_unsandboxed=not isolation.sandboxed, python=isolation.python)
    if result.status != "ok":
        raise RuntimeError(f"recording the canonical solutions' calls failed ({result.status}: {result.detail}): "
                           f"{result.stderr[-2000:]}")
    by_id = {p.id: p for p in problems}
    recorded = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        problem = by_id[row["id"]]
        tolerances = check_tolerances(problem.check_program)
        calls = []
        for call in row["calls"]:
            try:
                calls.append(ReferenceCall(read_literal(call["args"]), read_literal(call["kwargs"]),
                                           read_literal(call["result"]), tolerances.get(call["line"])))
            except NotPlainData as error:
                raise ValueError(f"{problem.id}: its check calls {problem.entry_point} with arguments or a canonical "
                                 f"result that is not plain data ({error}): {call}") from None
        if not calls:
            raise ValueError(f"{problem.id}: its check never calls {problem.entry_point}; nothing to compare")
        recorded[problem.id] = tuple(calls)
    return recorded


class ReferenceCallCache:
    """Recorded calls per problem, recorded once per process (a batch of problems in one run)."""

    def __init__(self):
        self._calls: dict[BenchmarkProblem, tuple[ReferenceCall, ...]] = {}
        self._lock = threading.Lock()

    def prepare(self, problems: Iterable[BenchmarkProblem], isolation: Isolation) -> None:
        """Records, in one run, the script problems among `problems` not recorded yet."""
        with self._lock:
            todo = list({p: None for p in problems if p.kind == "script" and p not in self._calls})
            if todo:
                recorded = record_reference_calls(todo, isolation)
                self._calls.update((p, recorded[p.id]) for p in todo)

    def get(self, problem: BenchmarkProblem, isolation: Isolation) -> tuple[ReferenceCall, ...]:
        self.prepare([problem], isolation)
        return self._calls[problem]


REFERENCE_CALLS = ReferenceCallCache()


def values_match(values: Any, calls: Sequence[ReferenceCall], entry_point: str | None) -> tuple[bool, str]:
    """Whether a sample's returned literals (one per recorded call) match; (ok, why not)."""
    if not isinstance(values, list) or len(values) != len(calls):
        return False, f"expected {len(calls)} return values, got {str(values)[:200]}"
    for index, (value, call) in enumerate(zip(values, calls)):
        if not isinstance(value, str):
            return False, f"call {index}: the return value is not plain data ({str(value)[:200]})"
        try:
            actual = read_literal(value)
        except NotPlainData as error:
            return False, f"call {index}: {error}"
        if not _same(actual, call, entry_point):
            return False, f"call {index}: {entry_point}{_shown_args(call)} returned {value[:200]}, expected {call.expected!r:.200}"
    return True, ""


def _same(actual: Any, call: ReferenceCall, entry_point: str | None) -> bool:
    if entry_point == "find_zero":
        return _is_root(call.args[0], actual)
    if call.tolerance is not None and _number(actual) and _number(call.expected):
        return abs(actual - call.expected) < call.tolerance
    return actual == call.expected


def _is_root(coefficients: Sequence[float], x: Any) -> bool:
    if not _number(x):
        return False
    try:
        return math.fabs(sum(c * math.pow(x, i) for i, c in enumerate(coefficients))) < FIND_ZERO_TOLERANCE
    except (OverflowError, ValueError):
        return False


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _shown_args(call: ReferenceCall) -> str:
    text = ", ".join([repr(a) for a in call.args] + [f"{k}={v!r}" for k, v in call.kwargs.items()])
    return f"({text[:200]})"
