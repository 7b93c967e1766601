"""Dumps the sample shards of a directory as JSONL (one SampleRecord per line).

  python launch/dump_samples.py --input=<workdir>/samples [--output=samples.jsonl]
"""

from __future__ import annotations

import json
import sys

from absl import app, flags

from ssd_jax import launcher
from ssd_jax.data.records import read_records

_INPUT = flags.DEFINE_string("input", None, "Directory of sample shards (*.arrayrecord).", required=True)
_OUTPUT = flags.DEFINE_string("output", "-", "JSONL file to write; '-' writes to stdout.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    records = read_records(_INPUT.value)
    out = sys.stdout if _OUTPUT.value == "-" else open(_OUTPUT.value, "w", encoding="utf-8")
    try:
        for record in records:
            out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    launcher.run(main)
