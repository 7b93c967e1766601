"""Generic JSONL prompts: one object per line with `id` and either `prompt` or `messages`.

    {"id": "p1", "prompt": "Write a function ...", "starter_code": "def f(x):"}   # optional
    {"id": "p2", "messages": [{"role": "system", "content": "..."},
                              {"role": "user", "content": "..."}]}

`prompt` rows are formatted like any other problem (system message + user turn); `messages`
rows are used as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssd_jax.problems.types import Problem

SOURCE = "jsonl"
_ROLES = ("system", "user", "assistant")


def _messages(value: Any, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    for turn in value:
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in _ROLES
            or not isinstance(turn.get("content"), str)
        ):
            raise ValueError(
                f"{where}: each message needs 'role' in {_ROLES} and a string 'content', got {turn!r}"
            )
    if not any(turn["role"] == "user" for turn in value):
        raise ValueError(f"{where}: 'messages' has no user turn")
    return tuple({"role": t["role"], "content": t["content"]} for t in value)


def _problem(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), (str, int)) or str(row["id"]) == "":
        raise ValueError(f"{where}: missing a non-empty 'id' (string or integer)")
    has_prompt, has_messages = "prompt" in row, "messages" in row
    if has_prompt == has_messages:
        raise ValueError(f"{where}: give exactly one of 'prompt' (a string) or 'messages' (a list)")
    if has_prompt:
        if not isinstance(row["prompt"], str) or not row["prompt"].strip():
            raise ValueError(f"{where}: 'prompt' must be a non-empty string")
        return Problem(
            id=str(row["id"]),
            statement=row["prompt"],
            starter_code=str(row.get("starter_code") or ""),
            source=SOURCE,
        )
    messages = _messages(row["messages"], where)
    last_user = [t["content"] for t in messages if t["role"] == "user"][-1]
    return Problem(id=str(row["id"]), statement=last_user, source=SOURCE, messages=messages)


def load_jsonl_prompts(path: str | Path) -> list[Problem]:
    """Reads a prompts JSONL file; a bad row raises an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompts file not found: {path}")
    problems: list[Problem] = []
    first_line_of: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error})") from None
            problem = _problem(row, where)
            if problem.id in first_line_of:
                raise ValueError(
                    f"{where}: duplicate id {problem.id!r} (first on line "
                    f"{first_line_of[problem.id]}); ids must be unique"
                )
            first_line_of[problem.id] = line_number
            problems.append(problem)
    return problems
