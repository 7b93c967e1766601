"""The unit every prompt source yields: one programming problem to prompt a model with."""

from __future__ import annotations

import dataclasses


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
