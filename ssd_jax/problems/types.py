"""Programming problems: what prompt sources yield (`Problem`) and what a benchmark grades
(`BenchmarkProblem`, with its tests)."""

from __future__ import annotations

import ast
import dataclasses

TEST_KINDS = ("stdin", "functional", "script")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A programming problem, before any chat template is applied.

    `statement` is the problem text; `starter_code` is non-empty for function-style
    (LeetCode / HumanEval) problems. A source that already has chat messages (a generic
    JSONL with `messages`) sets `messages` and leaves prompt formatting to them.
    """

    id: str
    statement: str
    starter_code: str = ""
    source: str = ""
    messages: tuple[dict[str, str], ...] | None = None


@dataclasses.dataclass(frozen=True)
class IOTest:
    """One test: `input` is stdin text (stdin) or one JSON argument per line (functional)."""

    input: str
    output: str
    testtype: str


@dataclasses.dataclass(frozen=True)
class BenchmarkProblem:
    """A problem of LiveCodeBench (`stdin` or `functional` tests) or HumanEval (`script`).

    A `script` problem's program is built by `program_for(code)` (the prompt, then the model's
    code); `check_program` is HumanEval's `test` code, which defines `check(candidate)`, and
    `canonical_solution` the data set's reference completion.
    """

    id: str
    source: str
    title: str
    statement: str
    starter_code: str
    difficulty: str
    kind: str
    tests: tuple[IOTest, ...] = ()
    func_name: str | None = None
    entry_point: str | None = None
    check_program: str = ""
    canonical_solution: str = ""
    platform: str = ""
    contest_date: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TEST_KINDS:
            raise ValueError(f"problem {self.id}: kind must be one of {TEST_KINDS}, got {self.kind!r}")
        if self.kind == "functional" and not self.func_name:
            raise ValueError(f"problem {self.id}: functional tests need metadata.func_name")

    def as_problem(self) -> Problem:
        """The prompt-side view (as ssd_jax.data's prompt sources yield it)."""
        return Problem(id=self.id, statement=self.statement, starter_code=self.starter_code, source=self.source)

    def program_for(self, code: str) -> str:
        """The program of a `script` problem, given the model's extracted code.

        Code that defines the entry point at top level replaces the prompt's stub (the
        prompt stays above it for its imports and helpers); any other code is taken as the
        continuation of the prompt's function, as HumanEval's canonical solutions are.
        """
        if self.kind != "script":
            raise ValueError(f"problem {self.id} is {self.kind!r}, not a script problem")
        return f"{self.starter_code}\n\n{code}" if _defines(code, self.entry_point) else self.starter_code + code

    @property
    def check_script(self) -> str:
        """The data set's whole check, run after the program: `check_program`, then `check(entry_point)`."""
        return f"{self.check_program}\n\ncheck({self.entry_point})\n"


def _defines(code: str, name: str | None) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name for node in tree.body)
