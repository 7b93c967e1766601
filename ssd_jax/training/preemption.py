"""Stopping cleanly on SIGTERM, which is how TPU VMs (and most schedulers) preempt a job.

One process: a SIGTERM handler sets a flag; the trainer checks it between steps, saves a
checkpoint and returns. Several processes: JAX's preemption service (started by
`jax.distributed.initialize`) catches SIGTERM on whichever host receives it and agrees with
every host on one step to stop at, so all of them stop after that step and save it together
(Orbax writes every host's parameter shards and each host's data-iterator state), and all of
them resume from it.
"""

from __future__ import annotations

import signal
import threading
from typing import Self

import jax
from jax.experimental import multihost_utils


class PreemptionWatch:
    """Context manager: `should_stop(step)` turns true once SIGTERM has arrived."""

    def __init__(self):
        self._terminated = False
        self._previous = None

    def __enter__(self) -> Self:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _on_sigterm(self, signum, frame) -> None:
        self._terminated = True

    def should_stop(self, step: int) -> bool:
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._terminated
