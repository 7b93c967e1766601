"""Two JAX processes (CPU, coordinator on 127.0.0.1, 4 fake devices each) on configs/tiny.py with
uneven shares (7 prompts, 3 problems):
- sample, train and evaluate produce what one process with 8 devices produces: the same records,
  parameters and results.json;
- SIGTERM to one of the two in the middle of training stops both after one step with a
  checkpoint, and the rerun ends exactly where the uninterrupted two-process run ends: the same
  bits in parameters, optimizer state and each process's data-iterator state.

The one-process and the two-process runs share nothing and run side by side; the preempted run
trains on the two-process run's samples and reuses its compiled programs (same shapes, same mesh).
"""

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
import orbax.checkpoint as ocp
import portpicker
import pytest
from flax import nnx

from ssd_jax import load_model
from ssd_jax.data.records import read_records
from ssd_jax.training.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
PROMPTS, PROBLEMS, STEPS = 7, 3, 12
OVERRIDES = [f"--config.prompts.limit={PROMPTS}", f"--config.train.steps={STEPS}", "--config.train.global_batch=8",
             "--config.train.checkpoint_every=100", "--config.data.read_threads=1",
             "--config.sampling.max_new_tokens=12", f"--config.eval.benchmark.limit={PROBLEMS}",
             "--config.eval.temperatures=(1.0,)", "--config.eval.n_samples=1", "--config.eval.max_new_tokens=8"]


def _command(workdir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "launch" / "ssd.py"), f"--config={REPO / 'configs' / 'tiny.py'}",
            f"--config.workdir={workdir}", *OVERRIDES, *overrides]


def _env(devices: int, compile_cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_COMPILATION_CACHE_DIR=str(compile_cache), PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), **extra)
    return env


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _check(process: subprocess.Popen, log: Path) -> str:
    assert process.wait(timeout=900) == 0, log.read_text()[-4000:]
    return log.read_text()


def _pair(command: list[str], cache: Path, logs: list[Path]) -> list[subprocess.Popen]:
    port = portpicker.pick_unused_port()
    return [_start(command, _env(4, cache, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
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


def _training_state(workdir: Path, step: int) -> dict[str, np.ndarray | dict]:
    """The checkpoint of `step`: every parameter and optimizer-state array (as NumPy, by tree
    path) and each process's data-iterator state."""
    directory = workdir / "train" / "checkpoints" / str(step)
    checkpointer, state = ocp.PyTreeCheckpointer(), {}
    for item in ("params", "opt_state"):
        tree = checkpointer.metadata(directory / item).item_metadata.tree
        restored = checkpointer.restore(
            directory / item, restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))
        state.update({f"{item}{jax.tree_util.keystr(path)}": value
                      for path, value in jax.tree_util.tree_leaves_with_path(restored)})
    for process in sorted((directory / "data").glob("process_*.json")):
        state[f"data/{process.name}"] = json.loads(process.read_text())
    return state


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """`single/`: one process with 8 devices; `pair/`: two processes with 4 each; both running
    sample, train and evaluate, side by side."""
    root = tmp_path_factory.mktemp("runs")
    stages = "--config.stages=sample,train,evaluate"
    logs = [root / "single.log", root / "pair0.log", root / "pair1.log"]
    single = _start(_command(root / "single", stages), _env(8, root / "cache_single"), logs[0])
    pair = _pair(_command(root / "pair", stages), root / "cache_pair", logs[1:])
    for process, log in zip([single, *pair], logs):
        _check(process, log)
    return root


def test_two_processes_with_uneven_shares_equal_one_process(runs):
    single, pair = runs / "single", runs / "pair"
    by_process = [r.process_index for r in read_records(str(pair / "samples"))]
    assert sorted(by_process) == [0] * 8 + [1] * 6, "uneven shares: 4 and 3 prompts, 2 samples each"
    shares = [len((pair / "eval" / f"process{i:05d}" / "verdicts.jsonl").read_text().splitlines()) for i in range(2)]
    assert shares == [4, 2], "uneven shares: 2 and 1 problems × 2 models"
    assert _records(single) == _records(pair) and len(_records(pair)) == 2 * PROMPTS
    for a, b in zip(_params(single), _params(pair), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    one, two = _results(single), _results(pair)
    assert one == two and one["benchmark"]["num_problems"] == PROBLEMS


def test_sigterm_to_one_process_leaves_a_checkpoint_both_resume_from_bitwise(runs, tmp_path):
    workdir, logs = tmp_path / "preempted", [tmp_path / f"preempted{i}.log" for i in range(2)]
    command = _command(workdir, "--config.stages=train", f"--config.data.samples_dir={runs / 'pair' / 'samples'}")
    workers = _pair(command, runs / "cache_pair", logs)
    metrics = workdir / "train" / "metrics.jsonl"
    deadline = time.monotonic() + 900
    while len(read_metrics(metrics)) < 2:
        assert all(w.poll() is None for w in workers) and time.monotonic() < deadline, logs[1].read_text()[-4000:]
        time.sleep(0.05)
    workers[1].send_signal(signal.SIGTERM)  # one host of the pod is preempted
    stopped = [_check(worker, log) for worker, log in zip(workers, logs)]
    step = len(read_metrics(metrics))
    assert 2 <= step < STEPS, "preempted in the middle of training"
    assert all(f"stopped by SIGTERM after step {step}" in log for log in stopped), "every host stops at one step"
    assert max(int(p.name) for p in (workdir / "train" / "checkpoints").iterdir() if p.name.isdigit()) == step
    assert not (workdir / "train" / "final").exists() and not (workdir / "train" / "COMPLETE").exists()

    resumed = [_check(worker, log) for worker, log in zip(_pair(command, runs / "cache_pair", logs), logs)]
    assert all(f"resuming from the checkpoint of step {step}" in log for log in resumed), "every host resumes"
    losses = [(line["step"], line["loss"], line["grad_norm"]) for line in read_metrics(metrics)]
    assert losses == [(line["step"], line["loss"], line["grad_norm"])
                      for line in read_metrics(runs / "pair" / "train" / "metrics.jsonl")]

    uninterrupted, interrupted = _training_state(runs / "pair", STEPS), _training_state(workdir, STEPS)
    assert sorted(uninterrupted) == sorted(interrupted) and len([k for k in interrupted if k.startswith("data/")]) == 2
    different = [name for name, value in uninterrupted.items()  # exact equality: the same bits, no tolerance
                 if not (np.array_equal(value, interrupted[name]) if isinstance(value, np.ndarray)
                         else value == interrupted[name])]
    assert different == [], f"the resumed run differs from the uninterrupted one in {different}"
    for a, b in zip(_params(runs / "pair"), _params(workdir), strict=True):
        np.testing.assert_array_equal(a, b)
