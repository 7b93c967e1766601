"""Two JAX processes (CPU, coordinator on 127.0.0.1, 4 fake devices each) run the sample and
train stages of configs/tiny.py and produce what one process with 8 devices produces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import portpicker
from flax import nnx

from ssd_jax import load_model
from ssd_jax.data.records import read_records

REPO = Path(__file__).resolve().parents[1]
OVERRIDES = ["--config.stages=sample,train", "--config.train.steps=3", "--config.train.global_batch=8", "--config.data.read_threads=1"]


def _command(workdir: Path) -> list[str]:
    return [sys.executable, str(REPO / "launch" / "ssd.py"), f"--config={REPO / 'configs' / 'tiny.py'}",
            f"--config.workdir={workdir}", *OVERRIDES]


def _env(devices: int, compile_cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_COMPILATION_CACHE_DIR=str(compile_cache), PYTHONUNBUFFERED="1", **extra)
    return env


def _check(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=900) == 0, log.read_text()[-4000:]


def _start(workdir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(_command(workdir), env=env, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _records(workdir: Path) -> dict:
    return {(r.prompt_id, r.sample_index): (r.completion, tuple(r.completion_token_ids))
            for r in read_records(str(workdir / "samples"))}


def _params(workdir: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(load_model(str(workdir / "train" / "final")).model))]


def test_two_processes_equal_one(tmp_path):
    cache = tmp_path / "compile_cache"
    single = _start(tmp_path / "single", _env(8, cache), tmp_path / "single.log")
    _check(single, tmp_path / "single.log")

    port = portpicker.pick_unused_port()
    workers = [
        _start(tmp_path / "multi", _env(4, cache, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                        JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)), tmp_path / f"multi{i}.log")
        for i in range(2)
    ]
    for i, worker in enumerate(workers):
        _check(worker, tmp_path / f"multi{i}.log")

    assert len(list((tmp_path / "multi" / "samples").glob("*process00001*"))) > 0, "process 1 writes its own shard"
    one, two = _records(tmp_path / "single"), _records(tmp_path / "multi")
    assert one.keys() == two.keys() and len(one) == 16
    assert one == two
    for a, b in zip(_params(tmp_path / "single"), _params(tmp_path / "multi"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
