"""Per-step training metrics: JSON lines in `<workdir>/train/metrics.jsonl`, TensorBoard event
files beside it (`tensorboard --logdir <workdir>`), and a progress bar.

A resumed run first drops the lines of steps after its checkpoint (they were computed by the
interrupted run and are about to be computed again), so the file always holds one line per
step of the run's single trajectory. On local disk every line is appended as its step ends; on
remote storage (gs://, which cannot append) the file is rewritten whole at each `flush` (every
checkpoint and at the end), which loses nothing a resume would keep.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from typing import Any

import tqdm
from etils import epath

from ssd_jax.workdir import is_local

TENSORBOARD_SCALARS = ("loss", "learning_rate", "grad_norm", "tokens_per_s")


def read_metrics(path: str | epath.PathLike) -> list[dict[str, Any]]:
    """Every complete metrics line of `path`, in order."""
    path = epath.Path(path)
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut off by a kill: it and anything after it are dropped
    return lines


class TensorBoardLog:
    """Scalars as TensorBoard event files in `directory` (written through a local staging
    directory and copied on `flush` when `directory` is remote)."""

    def __init__(self, directory: str | epath.PathLike):
        from tensorboardX import SummaryWriter

        self.directory = epath.Path(directory)
        self._staging = None if is_local(self.directory) else tempfile.TemporaryDirectory(prefix="ssd_jax_tb_")
        logdir = str(self.directory) if self._staging is None else self._staging.name
        self._writer = SummaryWriter(logdir=logdir, flush_secs=30)

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        for name, value in values.items():
            self._writer.add_scalar(prefix + name, value, step)

    def flush(self) -> None:
        self._writer.flush()
        if self._staging is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            for event_file in epath.Path(self._staging.name).iterdir():
                (self.directory / event_file.name).write_bytes(event_file.read_bytes())

    def close(self) -> None:
        self.flush()
        self._writer.close()
        if self._staging is not None:
            self._staging.cleanup()


class MetricsLog:
    """One JSON line and TensorBoard scalars per step; only process 0 writes (`enabled`)."""

    def __init__(self, path: str | epath.PathLike, resume_step: int, *, total_steps: int, enabled: bool = True,
                 tensorboard_dir: str | epath.PathLike | None = None):
        self.path, self.enabled = epath.Path(path), enabled
        self._append = is_local(self.path)
        self._lines: list[dict[str, Any]] = []
        self._tensorboard = None
        if enabled:
            self._lines = [line for line in read_metrics(self.path) if line["step"] <= resume_step]
            self._rewrite()
            if tensorboard_dir is not None:
                self._tensorboard = TensorBoardLog(tensorboard_dir)
        self._bar = tqdm.tqdm(total=total_steps, initial=resume_step, disable=not enabled, desc="train", unit="step")

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(line) + "\n" for line in self._lines)
        if self._append:  # local: write beside, then rename over (never a half-written file)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.path)
        else:  # remote: one object write is whole or absent
            self.path.write_text(text, encoding="utf-8")

    def write(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._lines.append(metrics)
        if self._append:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(metrics) + "\n")
        if self._tensorboard is not None:
            self._tensorboard.scalars(metrics["step"], {k: metrics[k] for k in TENSORBOARD_SCALARS}, "train/")
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['learning_rate']:.2e}")

    def flush(self) -> None:
        """Makes every line so far durable (remote storage) and flushes TensorBoard."""
        if not self.enabled:
            return
        if not self._append:
            self._rewrite()
        if self._tensorboard is not None:
            self._tensorboard.flush()

    def close(self) -> None:
        self.flush()
        if self._tensorboard is not None:
            self._tensorboard.close()
        self._bar.close()
