"""Joining a multi-process JAX run (every host of a TPU pod, a GPU cluster, or several CPU processes).

`initialize_distributed(config.distributed)` decides, in this order:
  1. `cluster_detection="off"`: never initialise (one process).
  2. Explicit coordinator settings, from the config (`coordinator_address`, `num_processes`,
     `process_id`) or the environment (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
     `JAX_PROCESS_ID`); works on any platform (CPU processes use gloo collectives).
  3. `cluster_detection="auto"` (the default): JAX's own cluster detection, as MaxText relies
     on: TPU VMs created with `gcloud compute tpus tpu-vm create` or queued resources (GCE, via
     the metadata server), TPU slices on GKE (`TPU_WORKER_HOSTNAMES` / `TPU_PROCESS_ADDRESSES`),
     Slurm, Open MPI and Kubernetes GPU jobs. A detected cluster calls
     `jax.distributed.initialize()`, which fills in the coordinator, process count and id.
     Nothing detected: one process.
  Any other `cluster_detection` value names one of JAX's detectors (e.g. "slurm", "gke_tpu").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
from absl import logging

from ssd_jax.errors import ConfigError

# How long a process that reached a barrier waits for the slowest one (its share of a stage may be
# larger, its compile slower): the wait is in JAX's coordination service, not a device collective,
# which on CPU (gloo) gives up after 30 seconds.
BARRIER_TIMEOUT_S = 24 * 60 * 60
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def _detected_cluster() -> str | None:
    """The name of the cluster JAX's own detection finds here, or None."""
    from jax._src.clusters import ClusterEnv  # the detectors jax.distributed.initialize() itself uses

    for env in ClusterEnv._cluster_types:
        if not env.opt_in_only_method and env.is_env_present():
            return getattr(env, "name", env.__name__)
    return None


def initialize_distributed(settings: Mapping) -> None:
    """Calls `jax.distributed.initialize` when this process is one of several; see the module
    docstring. `settings` is `config.distributed` (configs/base.py holds its defaults)."""
    if jax.distributed.is_initialized():
        return
    detection = str(settings["cluster_detection"])
    if detection == "off":
        return
    coordinator = settings["coordinator_address"] or os.environ.get(COORDINATOR_ENV)
    timeout = int(settings["initialization_timeout_s"])
    if coordinator:
        num_processes = int(settings["num_processes"] or os.environ.get(NUM_PROCESSES_ENV, 0))
        process_id = int(settings["process_id"])
        process_id = process_id if process_id >= 0 else int(os.environ.get(PROCESS_ID_ENV, -1))
        if num_processes < 1 or process_id < 0:
            raise ConfigError(
                f"a coordinator ({coordinator}) is set, so config.distributed.num_processes and process_id (or "
                f"{NUM_PROCESSES_ENV} and {PROCESS_ID_ENV}) must be set too")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=timeout)
    elif detection == "auto":
        cluster = _detected_cluster()
        if cluster is None:
            return
        logging.info("cluster detected by JAX: %s", cluster)
        jax.distributed.initialize(initialization_timeout=timeout)
    else:
        jax.distributed.initialize(cluster_detection_method=detection, initialization_timeout=timeout)
    logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())


def barrier(name: str) -> None:
    """Waits until every process reaches `name` (a name used once per run; alone, returns at once)."""
    if jax.process_count() > 1:
        from jax._src import distributed  # the client that jax.distributed.initialize connected

        distributed.global_state.client.wait_at_barrier(name, timeout_in_ms=BARRIER_TIMEOUT_S * 1000)


def use_compilation_cache(directory: str) -> None:
    """Keeps compiled XLA programs in `directory` (local or gs://) across runs; "" = off
    (`JAX_COMPILATION_CACHE_DIR` in the environment still applies)."""
    if directory:
        jax.config.update("jax_compilation_cache_dir", str(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
