"""The offline prompt set: 235 short function-writing problems shipped with the package.

Written for ssd-jax so the embedded default (SmolLM2 on a CPU) can run SSD with no download:
string processing, lists and dicts, number theory and arithmetic, geometry, grids and
matrices, intervals and dates, graphs, dynamic programming and classic data structures. Each
problem gives a statement (usually with an example) and a one-line `def` signature as
starter code. None shares an entry point or a task with HumanEval, the embedded evaluation
benchmark (tests/test_prompts.py checks names and statement overlap).
"""

from __future__ import annotations

import importlib.resources
import json

from ssd_jax.problems.types import Problem

SOURCE = "offline"
DATA_FILE = "offline_problems.jsonl"


def load_offline_problems() -> list[Problem]:
    """The packaged problems, in file order (ids are `offline-<entry point>`)."""
    text = importlib.resources.files("ssd_jax.data").joinpath(DATA_FILE).read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        Problem(
            id=row["id"], statement=row["statement"], starter_code=row["starter_code"], source=SOURCE
        )
        for row in rows
    ]
