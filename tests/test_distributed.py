"""Joining a pod: what `initialize_distributed` decides from the config and environment, short of
connecting (tests/test_multiprocess.py connects real processes)."""

import jax
import pytest

from configs import base
from ssd_jax.errors import ConfigError
from ssd_jax.parallel.distributed import initialize_distributed


def test_alone_nothing_is_initialised(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri"):
        monkeypatch.delenv(name, raising=False)
    initialize_distributed(base.get_config().distributed)  # auto: no cluster here
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    initialize_distributed({**base.get_config().distributed.to_dict(), "cluster_detection": "off"})
    assert not jax.distributed.is_initialized()


def test_a_coordinator_without_process_count_or_id_is_a_config_error(monkeypatch):
    monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    settings = {**base.get_config().distributed.to_dict(), "coordinator_address": "10.0.0.2:1234", "num_processes": 4}
    with pytest.raises(ConfigError, match="config.distributed.num_processes and process_id"):
        initialize_distributed(settings)
    assert not jax.distributed.is_initialized()
