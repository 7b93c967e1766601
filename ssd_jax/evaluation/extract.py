"""The program inside a model's response: its last fenced code block (LiveCodeBench's rule)."""

from __future__ import annotations


def extract_code(response: str) -> str | None:
    """The lines between the last two lines that contain a ``` fence; None if there are fewer
    than two such lines or the block is blank (the sample then fails as `no_code`)."""
    lines = response.split("\n")
    fences = [index for index, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    code = "\n".join(lines[fences[-2] + 1:fences[-1]])
    return code if code.strip() else None
