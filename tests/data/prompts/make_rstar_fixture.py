"""Writes the rStar-Coder `seed_sft` fixture: two parquet shards and the same rows as JSONL.

Columns and types follow the real data set (question_id, question, starter_code, response,
verified, is_passed). Rows exercise de-duplication across shards (after whitespace
normalisation), `is_passed` filtering after de-duplication, starter code and an empty
statement. Run from this directory: python make_rstar_fixture.py
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SUM = "Given N integers, print their sum.\n\nInput\nThe first line contains N. The second line contains N integers.\n\nOutput\nPrint the sum."
MAX_PAIR = "Given an integer array nums, return the maximum product of two distinct elements."
STARTER = "class Solution:\n    def maxProduct(self, nums: List[int]) -> int:\n        "
VOWELS = "Read a string S and print the number of vowels in it."
GRID = "You are given an H x W grid of '.' and '#'. Print the number of '#' cells."

SHARDS = [
    [
        ("q-sum", SUM, "", True),
        ("q-max-pair", MAX_PAIR, STARTER, True),
        ("q-sum-copy", "  Given N integers,   print their sum.\nInput\nThe first line contains N.  The second line contains N integers.\nOutput\nPrint the sum.  ", "", False),
        ("q-vowels", VOWELS, "", False),
    ],
    [
        ("q-vowels-copy", VOWELS + "\n", "", True),
        ("q-empty", "   \n", "", True),
        ("q-grid", GRID, "", True),
        ("q-max-pair-copy", MAX_PAIR, STARTER, False),
    ],
]


def as_row(question_id, question, starter_code, is_passed):
    return {
        "question_id": question_id,
        "question": question,
        "starter_code": starter_code,
        "response": "<think>...</think>\n```python\nprint(0)\n```",
        "verified": True,
        "is_passed": is_passed,
    }


def main():
    root = Path(__file__).parent
    shard_dir = root / "rstar" / "seed_sft"
    shard_dir.mkdir(parents=True, exist_ok=True)
    all_rows = []
    for index, shard in enumerate(SHARDS):
        rows = [as_row(*row) for row in shard]
        all_rows += rows
        path = shard_dir / f"data-{index:05d}-of-{len(SHARDS):05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    with (root / "rstar_seed_sft.jsonl").open("w") as out:
        for row in all_rows:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
