"""Everything a training run reads from its config, validated once, with the files it writes.

Layout of `<workdir>/train/`:
    checkpoints/<step>/   Orbax: params, opt_state, data (Grain iterator state per process), run
    metrics.jsonl         one JSON line per step
    final/                the trained model as an ssd-jax model directory (`load_model` reads it)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax

from ssd_jax.data.pipeline import DataSettings
from ssd_jax.training.optimizer import OptimizerSettings


@dataclasses.dataclass(frozen=True)
class TrainPaths:
    root: str

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.root, "checkpoints")

    @property
    def metrics(self) -> str:
        return os.path.join(self.root, "metrics.jsonl")

    @property
    def final(self) -> str:
        return os.path.join(self.root, "final")


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
    remat: bool
    checkpoint_every: int
    keep_checkpoints: int
    async_checkpointing: bool
    log_every: int
    restore_fallback: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        if not config.get("workdir"):
            raise ValueError("config.workdir is empty: say where the run's outputs go")
        if not config.get("model"):
            raise ValueError("config.model is empty: give the checkpoint reference to fine-tune")
        workdir = os.path.abspath(config["workdir"])
        data, train = config["data"], config["train"]
        samples_dir = data.get("samples_dir") or os.path.join(workdir, "samples")
        settings = cls(
            workdir=workdir,
            model=str(config["model"]),
            seed=int(config.get("seed", 0)),
            dtype=str(config.get("dtype", "float32")),
            param_dtype=str(config.get("param_dtype", "float32")),
            mesh={axis: int(config["mesh"][axis]) for axis in ("data", "fsdp", "model")},
            data=DataSettings(
                samples_dir=samples_dir, filter=data["filter"], shortest_percent=float(data["shortest_percent"]),
                max_length=int(data["max_length"]), overlong=data["overlong"], pack=bool(data["pack"]),
                epochs=int(data.get("epochs", 0)), read_threads=int(data.get("read_threads", 4)),
            ),
            optimizer=OptimizerSettings(
                steps=int(train["steps"]), peak_learning_rate=float(train["peak_learning_rate"]),
                final_learning_rate=float(train["final_learning_rate"]), warmup_steps=int(train["warmup_steps"]),
                b1=float(train["b1"]), b2=float(train["b2"]), weight_decay=float(train["weight_decay"]),
                grad_clip=float(train["grad_clip"]),
            ),
            global_batch=int(train["global_batch"]),
            micro_batch=int(train.get("micro_batch", 0)) or int(train["global_batch"]),
            remat=bool(train.get("remat", False)),
            checkpoint_every=int(train["checkpoint_every"]),
            keep_checkpoints=int(train["keep_checkpoints"]),
            async_checkpointing=bool(train.get("async_checkpointing", True)),
            log_every=max(int(train.get("log_every", 1)), 1),
            restore_fallback=bool(train.get("restore_fallback", False)),
        )
        settings.validate_batch(jax.process_count())
        return settings

    @property
    def paths(self) -> TrainPaths:
        return TrainPaths(os.path.join(self.workdir, "train"))

    @property
    def accumulation(self) -> int:
        return self.global_batch // self.micro_batch

    def validate_batch(self, process_count: int) -> None:
        """Rows must split evenly over accumulation steps and processes."""
        if self.global_batch < 1 or self.micro_batch < 1 or self.global_batch % self.micro_batch:
            raise ValueError(
                f"config.train.global_batch={self.global_batch} must be a positive multiple of "
                f"config.train.micro_batch={self.micro_batch}"
            )
        if self.micro_batch % process_count:
            raise ValueError(
                f"config.train.micro_batch={self.micro_batch} must be a multiple of the {process_count} processes"
            )
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError(
                f"config.train.checkpoint_every={self.checkpoint_every} and keep_checkpoints={self.keep_checkpoints} "
                "must be at least 1"
            )

    def fingerprint(self) -> dict[str, Any]:
        """The config fields that decide what the run computes, named as in the config; a
        checkpoint resumes only under equal ones. (Mesh, micro-batch, remat, checkpoint cadence
        and reader threads may change between restarts.)"""
        data = dataclasses.asdict(self.data)
        for free in ("read_threads", "samples_dir"):
            data.pop(free)
        return {
            "model": self.model, "seed": self.seed, "dtype": self.dtype, "param_dtype": self.param_dtype,
            "data": data, "train": {"global_batch": self.global_batch, **dataclasses.asdict(self.optimizer)},
        }
