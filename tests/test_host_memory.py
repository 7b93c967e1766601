"""Retaining freed host memory: repeated jitted calls stop faulting in fresh pages."""

import json
import statistics
import subprocess
import sys

_PROGRAM = """
import json, resource, sys
from ssd_jax.host_memory import retain_freed_host_memory
applied = retain_freed_host_memory() if sys.argv[1] == "retain" else False
import jax, jax.numpy as jnp
running_sum = jax.jit(lambda x: jnp.sum(jnp.cumsum(x) * x))  # a 128 MiB temporary per call
x = jnp.ones((32 << 20,), jnp.float32)
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    running_sum(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
"""


def _page_faults(mode: str) -> dict:
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _PROGRAM, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_retaining_process_reuses_freed_pages_and_a_default_one_does_not():
    default, retaining = _page_faults("default"), _page_faults("retain")
    pages = (128 << 20) // 4096
    assert min(default["faults"][2:]) > pages // 2  # each call maps its temporary afresh
    assert retaining["applied"]
    assert statistics.median(retaining["faults"][2:]) < pages // 20  # later calls reuse freed pages


def test_it_stays_off_where_jax_may_pick_an_accelerator(monkeypatch):
    from ssd_jax import host_memory

    monkeypatch.setenv("JAX_PLATFORMS", "tpu,cpu")
    assert host_memory._accelerator_possible()
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert not host_memory._accelerator_possible()
