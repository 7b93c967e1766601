"""The SSD stages, each a module with `NAME`, `fingerprint(config)` and `run(config)` (and
optionally `RETIRED`: fields its fingerprint once held, ignored in old work directories):

    sample    the frozen base model's samples       <workdir>/samples/
    train     fine-tune on them                     <workdir>/train/ (final/ is the SSD model)
    evaluate  pass@k over a temperature grid         <workdir>/eval/results.json
    report    base vs SSD at their best temperature  <workdir>/ssd_report.json

`run_stages` is the one entry point the launchers call. It reads the config first (the one
place to validate it), joins the other processes of a pod, then runs each stage in order:
refuse changed settings, skip a finished stage, record the settings, run, wait for every
process, mark complete (`ssd_jax.stages.common`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging

from configs.validation import validate_config
from ssd_jax.errors import ConfigError
from ssd_jax.parallel.distributed import initialize_distributed, use_compilation_cache
from ssd_jax.stages import common, evaluate, report, sample, train
from ssd_jax.workdir import Workdir

STAGES = {module.NAME: module for module in (sample, train, evaluate, report)}


def parse_stages(text: str) -> list[str]:
    """`"sample,train"` → the named stages in pipeline order; unknown names are a ConfigError."""
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise ConfigError(f"config.stages={text!r}: give a comma-separated subset of {','.join(STAGES)}")
    return [name for name in STAGES if name in names]


def prepare(config: Mapping, stages: Sequence[str]) -> Workdir:
    """Everything done once before any stage: check the config fields `stages` read
    (configs/validation.py), join the pod's other processes, set up the compilation cache.
    Returns the run's work directory."""
    validate_config(config, stages)
    workdir = Workdir(config["workdir"])
    initialize_distributed(config["distributed"])
    use_compilation_cache(config["compilation_cache_dir"])
    return workdir


def run_stages(config: Mapping, stages: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs `stages` (default: `config.stages`) in pipeline order; returns each stage's result."""
    names = parse_stages(",".join(stages) if stages is not None else config["stages"])
    workdir = prepare(config, names)
    results = {}
    for name in names:
        results[name] = run_stage(STAGES[name], config, workdir)
    return results


def run_stage(stage, config: Mapping, workdir: Workdir) -> Any:
    """One stage: refuse changed settings, skip if finished, else record settings, run, mark done."""
    settings = stage.fingerprint(config)
    finished = common.check_settings(workdir, stage.NAME, settings, getattr(stage, "RETIRED", ()))
    if finished is not None:
        logging.info("stage %s: already complete in %s, skipped", stage.NAME, workdir.stage_dir(stage.NAME))
        print(f"[ssd] {stage.NAME}: already complete, skipped")
        return finished.get("result")
    print(f"[ssd] {stage.NAME}: running")
    common.start(workdir, stage.NAME, settings)
    result = stage.run(config)
    if dataclasses.is_dataclass(result):
        result = dataclasses.asdict(result)
    common.finish(workdir, stage.NAME, settings, result)
    return result
