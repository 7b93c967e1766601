"""Stage `train` (SSD stage 2): fine-tune the base model on its own samples, plain cross-entropy.

Reads `workdir`, `model`, `seed`, `dtype`, `param_dtype`, `mesh`, `data.*` and `train.*` once
(`TrainSettings.from_config`); samples come from `data.samples_dir` (default `<workdir>/samples`).
Writes `<workdir>/train/`: checkpoints/, metrics.jsonl and TensorBoard events, and at the end
final/ (an ssd-jax model directory). A rerun resumes from the latest checkpoint; SIGTERM on any
host saves a checkpoint on every host and stops the stage (`Preempted`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssd_jax.errors import SsdJaxError
from ssd_jax.stages import sample
from ssd_jax.stages.common import flat_fields
from ssd_jax.training.settings import TrainSettings
from ssd_jax.training.trainer import train

NAME = "train"
# The chat-template arguments render the training rows from the samples' messages.
FINGERPRINT = ("model", "seed", "dtype", "param_dtype", "data", "train", "prompts.chat_template_kwargs")
# How fast or how often, never what is computed: these may change between restarts. (Packed
# rows hold the same examples per step; checkpoint models are exports beside the checkpoints;
# restore_fallback is the way out that an unreadable checkpoint's error names.)
EXECUTION_ONLY = ("data.read_threads", "data.packed_rows", "train.micro_batch", "train.remat", "train.attention",
                  "train.checkpoint_every", "train.keep_checkpoints", "train.async_checkpointing", "train.log_every",
                  "train.checkpoint_models", "train.restore_fallback")


class Preempted(SsdJaxError):
    """Training stopped on SIGTERM with a checkpoint on every host; rerun the same command to resume."""


def fingerprint(config: Mapping) -> dict[str, Any]:
    """What the trained model depends on: the training fields and, when it trains on this run's
    own samples, everything those depend on."""
    fields = flat_fields(config, FINGERPRINT, EXECUTION_ONLY)
    if not config["data"]["samples_dir"]:
        fields.update(sample.fingerprint(config))
    return fields


def run(config: Mapping) -> dict[str, Any]:
    """Trains (or resumes) to `train.steps`; returns the final model's path and the last step."""
    result = train(TrainSettings.from_config(config))
    if result.final_model is None:
        raise Preempted(f"training stopped at step {result.step} ({result.status}) with a checkpoint on every "
                        "host; rerun the same command to resume")
    return {"final_model": result.final_model, "step": result.step, "metrics": result.metrics_path}
