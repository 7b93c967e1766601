"""Per-step training metrics: JSON lines in `<workdir>/train/metrics.jsonl` and a progress bar.

A resumed run first drops the lines of steps after its checkpoint (they were computed by the
interrupted run and are about to be computed again), so the file always holds one line per
step of the run's single trajectory.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tqdm


def read_metrics(path: str) -> list[dict[str, Any]]:
    """Every complete metrics line of `path`, in order."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = []
        for line in f:
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut off by a kill: it and anything after it are dropped
        return lines


class MetricsLog:
    """Appends one JSON line per step; only process 0 writes (`enabled`)."""

    def __init__(self, path: str, resume_step: int, *, total_steps: int, enabled: bool = True):
        self.path, self.enabled = path, enabled
        if enabled:
            kept = [line for line in read_metrics(path) if line["step"] <= resume_step]
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(line) + "\n" for line in kept)
            os.replace(tmp, path)
        self._bar = tqdm.tqdm(total=total_steps, initial=resume_step, disable=not enabled, desc="train", unit="step")

    def write(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['learning_rate']:.2e}")

    def close(self) -> None:
        self._bar.close()
