"""The SSD pipeline: sample → fine-tune → evaluate base and SSD → report, in one work directory.

    <workdir>/samples/   sample shards of the frozen base model        (stage `sample`)
    <workdir>/train/     checkpoints, metrics.jsonl, final/ SSD model  (stage `train`)
    <workdir>/eval/      samples, verdicts, results.json, pass_at_1.png (stage `evaluate`)
    <workdir>/ssd_report.json                                            the base-vs-SSD summary

Each stage leaves `<stage dir>/COMPLETE` (holding the settings it ran with) when it finishes,
and a rerun skips it; each stage also resumes by itself from what it wrote before a kill. A
finished stage whose settings differ from the config's is an error, never silently reused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
from absl import logging
from etils import epath

from ssd_jax.errors import SettingsChangedError
from ssd_jax.parallel.distributed import initialize_distributed

STAGES = ("sample", "train", "evaluate")
STAGE_DIRS = {"sample": "samples", "train": "train", "evaluate": "eval"}
BASE_NAME, SSD_NAME = "base", "ssd"


class StageSettingsChangedError(SettingsChangedError):
    """A finished stage in the work directory ran with other settings than the config's."""


def final_model_dir(workdir: str) -> str:
    return os.path.join(workdir, STAGE_DIRS["train"], "final")


def stage_settings(config: Mapping, stage: str) -> dict[str, Any]:
    """What a stage's output depends on: a change here means the output is stale."""
    sections = {"sample": ("prompts", "sampling"), "train": ("prompts", "sampling", "data", "train"),
                "evaluate": ("prompts", "sampling", "data", "train", "eval")}[stage]
    settings = {"model": config["model"], "seed": config["seed"], "dtype": config["dtype"],
                "param_dtype": config["param_dtype"]}
    settings.update({name: _plain(config[name]) for name in sections})
    return settings


def run_pipeline(config: Any) -> dict | None:
    """Runs `config.stages` in order; returns the base-vs-SSD summary when both were evaluated."""
    initialize_distributed()
    stages = [s.strip() for s in config.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown or not stages:
        raise ValueError(f"config.stages={config.stages!r}: give a comma-separated subset of {','.join(STAGES)}")
    runners: dict[str, Callable[[Any], Any]] = {"sample": _sample, "train": _train, "evaluate": _evaluate}
    result = None
    for stage in STAGES:
        if stage in stages:
            result = _run_stage(config, stage, runners[stage])
    return result if "evaluate" in stages else None


def _run_stage(config: Any, stage: str, runner: Callable[[Any], Any]) -> Any:
    marker = epath.Path(config.workdir) / STAGE_DIRS[stage] / "COMPLETE"
    wanted = stage_settings(config, stage)
    if marker.exists():
        done = json.loads(marker.read_text())
        if done["settings"] != wanted:
            changed = sorted(k for k in set(done["settings"]) | set(wanted) if done["settings"].get(k) != wanted.get(k))
            raise StageSettingsChangedError(
                f"{marker.parent} holds a finished '{stage}' stage run with other settings ({', '.join(changed)} "
                f"differ). Use a new workdir, or delete {marker.parent} to redo it."
            )
        logging.info("stage %s: already complete in %s, skipped", stage, marker.parent)
        print(f"[ssd] {stage}: already complete, skipped")
        return done.get("result")
    print(f"[ssd] {stage}: running")
    result = runner(config)
    if jax.process_index() == 0:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"settings": wanted, "result": result}, indent=2, default=str))
    return result


def _sample(config: Any) -> None:
    from ssd_jax.sampling.job import sample_from_config

    sample_from_config(config)


def _train(config: Any) -> str:
    from ssd_jax.training.trainer import train_from_config

    result = train_from_config(config)
    if result.final_model is None:  # preempted: a checkpoint is saved, the stage is not complete
        raise SystemExit(f"training stopped at step {result.step} ({result.status}); rerun the same command to resume")
    return str(result.final_model)


def _evaluate(config: Any) -> dict | None:
    from ssd_jax.evaluation.comparison import compare, format_comparison
    from ssd_jax.evaluation.from_config import evaluate_from_config

    models = list(config.eval.models)
    if config.eval.include_ssd:
        models.insert(0, f"{SSD_NAME}={final_model_dir(config.workdir)}")
    if config.eval.include_base:
        models.insert(0, f"{BASE_NAME}={config.model}")
    results = evaluate_from_config(config, models=models, workdir=os.path.join(config.workdir, STAGE_DIRS["evaluate"]))
    if not (config.eval.include_base and config.eval.include_ssd):
        return None
    summary = compare(results, BASE_NAME, SSD_NAME, seed=config.seed)
    print(format_comparison(summary))
    if jax.process_index() == 0:
        epath.Path(config.workdir, "ssd_report.json").write_text(json.dumps(summary, indent=2))
    return summary


def _plain(value: Any) -> Any:
    """A ConfigDict section as plain JSON-comparable data (tuples become lists)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return json.loads(json.dumps(value, default=str))
