"""Stage `report`: base vs SSD, each at its headline pass@1 (`eval.headline`: a temperature fixed
in advance, or chosen on the other half of the problems), with a paired interval over the
problems both were scored on.

Reads `<workdir>/eval/results.json` and writes `<workdir>/ssd_report.json` (process 0). Needs
both `eval.include_base` and `eval.include_ssd`; otherwise there is nothing to compare and the
stage says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jax

from ssd_jax.errors import InputError
from ssd_jax.evaluation.report import compare, format_comparison
from ssd_jax.stages import evaluate
from ssd_jax.workdir import Workdir

NAME = "report"


def fingerprint(config: Mapping) -> dict[str, Any]:
    return evaluate.fingerprint(config)


def run(config: Mapping) -> dict | None:
    if not (config["eval"]["include_base"] and config["eval"]["include_ssd"]):
        print("[report] nothing to compare: set eval.include_base and eval.include_ssd for a base-vs-SSD report")
        return None
    workdir = Workdir(config["workdir"])
    if not workdir.results.exists():
        raise InputError(f"{workdir.results} does not exist: run the evaluate stage first")
    results = json.loads(workdir.results.read_text())
    summary = compare(results, evaluate.BASE_NAME, evaluate.SSD_NAME, seed=int(config["seed"]))
    print(format_comparison(summary))
    if jax.process_index() == 0:
        workdir.report.write_text(json.dumps(summary, indent=2))
    return summary
