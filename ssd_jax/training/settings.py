"""Everything a training run reads from its config, read once, with the files it writes.

The files live in the run's work directory (`ssd_jax.workdir.Workdir`: `train/checkpoints/`,
`train/metrics.jsonl` with TensorBoard events beside it, `train/final/`, and with
`train.checkpoint_models` `train/models/step_<N>/`), local or `gs://`.
Every field comes from the config (configs/base.py holds the defaults); none is defaulted here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

from ssd_jax.data.pipeline import DataSettings
from ssd_jax.errors import ConfigError
from ssd_jax.training.optimizer import OptimizerSettings
from ssd_jax.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    workdir: str
    model: str
    seed: int
    dtype: str
    param_dtype: str
    mesh: dict[str, int]
    data: DataSettings
    optimizer: OptimizerSettings
    global_batch: int
    micro_batch: int
    remat: bool | str  # a policy of models.remat (True / False: block / none)
    attention: str  # models.self_attention implementation
    checkpoint_every: int
    keep_checkpoints: int
    async_checkpointing: bool
    log_every: int
    checkpoint_models: bool  # also export each checkpoint's model (Workdir.checkpoint_model)
    restore_fallback: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        if not config["model"]:
            raise ConfigError("config.model is empty: give the checkpoint reference to fine-tune")
        workdir = Workdir(config["workdir"])
        data, train = config["data"], config["train"]
        settings = cls(
            workdir=str(workdir.root),
            model=str(config["model"]),
            seed=int(config["seed"]),
            dtype=str(config["dtype"]),
            param_dtype=str(config["param_dtype"]),
            mesh={axis: int(config["mesh"][axis]) for axis in ("data", "fsdp", "expert", "model")},
            data=DataSettings.from_config(config, samples_dir=str(data["samples_dir"] or workdir.samples)),
            optimizer=OptimizerSettings.from_config(config),
            global_batch=int(train["global_batch"]),
            micro_batch=int(train["micro_batch"]) or int(train["global_batch"]),
            remat=train["remat"],
            attention=str(train["attention"]),
            checkpoint_every=int(train["checkpoint_every"]),
            keep_checkpoints=int(train["keep_checkpoints"]),
            async_checkpointing=bool(train["async_checkpointing"]),
            log_every=max(int(train["log_every"]), 1),
            checkpoint_models=bool(train["checkpoint_models"]),
            restore_fallback=bool(train["restore_fallback"]),
        )
        settings.validate_batch(jax.process_count())
        return settings

    @property
    def paths(self) -> Workdir:
        return Workdir(self.workdir)

    @property
    def accumulation(self) -> int:
        return self.global_batch // self.micro_batch

    def validate_batch(self, process_count: int) -> None:
        """Rows must split evenly over accumulation steps and processes."""
        if self.global_batch < 1 or self.micro_batch < 1 or self.global_batch % self.micro_batch:
            raise ConfigError(
                f"config.train.global_batch={self.global_batch} must be a positive multiple of "
                f"config.train.micro_batch={self.micro_batch}"
            )
        if self.micro_batch % process_count:
            raise ConfigError(
                f"config.train.micro_batch={self.micro_batch} must be a multiple of the {process_count} processes"
            )
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ConfigError(
                f"config.train.checkpoint_every={self.checkpoint_every} and keep_checkpoints={self.keep_checkpoints} "
                "must be at least 1"
            )

    def fingerprint(self) -> dict[str, Any]:
        """The config fields that decide what the run computes, named as in the config; a
        checkpoint resumes only under equal ones. (Mesh, micro-batch, packed rows, remat,
        checkpoint cadence and reader threads may change between restarts.)"""
        data = dataclasses.asdict(self.data)
        for free in ("read_threads", "samples_dir", "packed_rows"):
            data.pop(free)
        return {
            "model": self.model, "seed": self.seed, "dtype": self.dtype, "param_dtype": self.param_dtype,
            "data": data, "train": {"global_batch": self.global_batch, **dataclasses.asdict(self.optimizer)},
        }
