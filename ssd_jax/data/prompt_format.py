"""Chat messages for one problem: the SSD data prompt (DESIGN §1, "Prompt format").

Instruct models get a system message asking for a Python solution in a markdown code block
and the problem as the user turn; a problem with starter code asks the model to complete it.
The paper does not publish its exact wording; this text follows its description.
"""

from __future__ import annotations

from ssd_jax.problems.types import Problem

DEFAULT_SYSTEM_MESSAGE = (
    "You are an expert Python programmer. Solve the user's programming problem with a "
    "complete, correct Python program, and put the code in a single markdown code block "
    "(```python ... ```)."
)
STARTER_CODE_INSTRUCTION = "Complete the following starter code:"


def problem_user_content(problem: Problem) -> str:
    """The user turn: the statement, plus the starter code in a fenced block if any."""
    statement = problem.statement.strip()
    if not problem.starter_code.strip():
        return statement
    return f"{statement}\n\n{STARTER_CODE_INSTRUCTION}\n```python\n{problem.starter_code}\n```"


def problem_messages(
    problem: Problem, system_message: str | None = DEFAULT_SYSTEM_MESSAGE
) -> list[dict[str, str]]:
    """The chat messages to render with the model's template.

    A problem that carries its own `messages` passes through unchanged, except that
    `system_message` (if set) is prepended when those messages have no system turn.
    `system_message=None` (or "") sends no system turn.
    """
    if problem.messages is not None:
        messages = [dict(turn) for turn in problem.messages]
        has_system = any(turn["role"] == "system" for turn in messages)
    else:
        messages = [{"role": "user", "content": problem_user_content(problem)}]
        has_system = False
    if system_message and not has_system:
        messages.insert(0, {"role": "system", "content": system_message})
    return messages
