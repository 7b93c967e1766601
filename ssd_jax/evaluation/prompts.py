"""Chat messages that ask a model for a benchmark solution, in LiveCodeBench's instruct format.

The wording is LiveCodeBench's own (its `PromptConstants` and generic question template), so
scores are comparable with its leaderboard. HumanEval problems use the same template with the
function prompt as the starter code. The model's chat template renders these messages.
"""

from __future__ import annotations

from ssd_jax.evaluation.benchmarks.types import BenchmarkProblem

SYSTEM_MESSAGE_GENERIC = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests. You will NOT "
    "return anything except for the program."
)
FORMATTING_MESSAGE_WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters."
)
FORMATTING_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "
    "the sample inputs). Enclose your code within delimiters as follows."
)


def question_prompt(statement: str, starter_code: str) -> str:
    """LiveCodeBench's user turn: `### Question:`, `### Format:` (starter code or a stub), `### Answer:`."""
    prompt = f"### Question:\n{statement}\n\n"
    if starter_code:
        prompt += f"### Format: {FORMATTING_MESSAGE_WITH_STARTER_CODE}\n"
        prompt += f"```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {FORMATTING_WITHOUT_STARTER_CODE}\n"
        prompt += "```python\n# YOUR CODE HERE\n```\n\n"
    prompt += "### Answer: (use the provided format with backticks)\n\n"
    return prompt


def benchmark_messages(problem: BenchmarkProblem, system_message: str | None = SYSTEM_MESSAGE_GENERIC) -> list[dict[str, str]]:
    """[system, user] messages for `problem`; an empty or None `system_message` leaves it out
    (for chat templates without a system role)."""
    messages = [{"role": "system", "content": system_message}] if system_message else []
    starter = problem.starter_code.rstrip("\n") if problem.kind == "script" else problem.starter_code
    messages.append({"role": "user", "content": question_prompt(problem.statement, starter)})
    return messages
