"""Joining a multi-process JAX run (every host of a TPU pod, or several CPU/GPU processes)."""

from __future__ import annotations

import os

import jax
from absl import logging

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def initialize_distributed() -> None:
    """Calls `jax.distributed.initialize()` when this process is one of several; a no-op alone.

    Explicit: `JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i` (any
    platform; CPU processes then use gloo collectives). Automatic: a TPU pod slice with more
    than one worker (`TPU_WORKER_HOSTNAMES`), where JAX finds its peers by itself.
    """
    if jax.distributed.is_initialized():
        return
    coordinator = os.environ.get(COORDINATOR_ENV)
    if coordinator:
        missing = [v for v in (NUM_PROCESSES_ENV, PROCESS_ID_ENV) if v not in os.environ]
        if missing:
            raise ValueError(f"{COORDINATOR_ENV} is set, so {', '.join(missing)} must be set too")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator, int(os.environ[NUM_PROCESSES_ENV]), int(os.environ[PROCESS_ID_ENV])
        )
    elif len([h for h in os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
        jax.distributed.initialize()
    else:
        return
    logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())
