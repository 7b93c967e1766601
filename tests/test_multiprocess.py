"""Two JAX processes (CPU, coordinator on 127.0.0.1, 4 fake devices each) run the sample, train
and evaluate stages of configs/tiny.py with uneven shares (7 prompts, 3 problems), one of them
is preempted (SIGTERM) in the middle of training, and after a rerun they produce what one
process with 8 devices produces: the same records, parameters and results.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import portpicker
from flax import nnx

from ssd_jax import load_model
from ssd_jax.data.records import read_records
from ssd_jax.training.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
PROMPTS, PROBLEMS, STEPS = 7, 3, 12
OVERRIDES = ["--config.stages=sample,train,evaluate", f"--config.prompts.limit={PROMPTS}",
             f"--config.train.steps={STEPS}", "--config.train.global_batch=8", "--config.train.checkpoint_every=100",
             "--config.data.read_threads=1", "--config.sampling.max_new_tokens=12",
             f"--config.eval.benchmark.limit={PROBLEMS}", "--config.eval.temperatures=(1.0,)",
             "--config.eval.n_samples=1", "--config.eval.max_new_tokens=8"]


def _command(workdir: Path) -> list[str]:
    return [sys.executable, str(REPO / "launch" / "ssd.py"), f"--config={REPO / 'configs' / 'tiny.py'}",
            f"--config.workdir={workdir}", *OVERRIDES]


def _env(devices: int, compile_cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_COMPILATION_CACHE_DIR=str(compile_cache), PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), **extra)
    return env


def _start(workdir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(_command(workdir), env=env, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _check(process: subprocess.Popen, log: Path) -> str:
    assert process.wait(timeout=900) == 0, log.read_text()[-4000:]
    return log.read_text()


def _pair(workdir: Path, cache: Path, logs: list[Path]) -> list[subprocess.Popen]:
    port = portpicker.pick_unused_port()
    return [_start(workdir, _env(4, cache, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                 JAX_PROCESS_ID=str(i)), logs[i]) for i in range(2)]


def _records(workdir: Path) -> dict:
    return {(r.prompt_id, r.sample_index): (r.completion, tuple(r.completion_token_ids))
            for r in read_records(str(workdir / "samples"))}


def _params(workdir: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(load_model(str(workdir / "train" / "final")).model))]


def _results(workdir: Path) -> dict:
    """results.json, the SSD model's reference (its path in this workdir) aside."""
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["models"]["ssd"].pop("ref") == str(workdir / "train" / "final")
    return results


def test_two_processes_equal_one_and_survive_a_preemption(tmp_path):
    cache = tmp_path / "compile_cache"
    single = _start(tmp_path / "single", _env(8, cache), tmp_path / "single.log")
    _check(single, tmp_path / "single.log")

    multi = tmp_path / "multi"
    logs = [tmp_path / f"multi{i}.log" for i in range(2)]
    workers = _pair(multi, cache, logs)
    deadline = time.monotonic() + 900
    while len(read_metrics(multi / "train" / "metrics.jsonl")) < 2:
        assert all(w.poll() is None for w in workers) and time.monotonic() < deadline, logs[1].read_text()[-4000:]
        time.sleep(0.05)
    workers[1].send_signal(signal.SIGTERM)  # one host of the pod is preempted
    stopped = [_check(worker, log) for worker, log in zip(workers, logs)]
    step = len(read_metrics(multi / "train" / "metrics.jsonl"))
    assert 2 <= step < STEPS, "preempted in the middle of training"
    assert all(f"stopped by SIGTERM after step {step}" in log for log in stopped), "every host stops at one step"
    assert max(int(p.name) for p in (multi / "train" / "checkpoints").iterdir() if p.name.isdigit()) == step
    assert not (multi / "train" / "final").exists() and not (multi / "train" / "COMPLETE").exists()
    assert (multi / "samples" / "COMPLETE").exists()

    resumed = [_check(worker, log) for worker, log in zip(_pair(multi, cache, logs), logs)]
    assert all(f"resuming from the checkpoint of step {step}" in log for log in resumed), "every host resumes"

    by_process = [r.process_index for r in read_records(str(multi / "samples"))]
    assert sorted(by_process) == [0] * 8 + [1] * 6, "uneven shares: 4 and 3 prompts, 2 samples each"
    shares = [len((multi / "eval" / f"process{i:05d}" / "verdicts.jsonl").read_text().splitlines()) for i in range(2)]
    assert shares == [4, 2], "uneven shares: 2 and 1 problems × 2 models"
    assert _records(tmp_path / "single") == _records(multi) and len(_records(multi)) == 2 * PROMPTS
    for a, b in zip(_params(tmp_path / "single"), _params(multi), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    one, two = _results(tmp_path / "single"), _results(multi)
    assert one == two and one["benchmark"]["num_problems"] == PROBLEMS
