"""Running the real training launcher in a subprocess, as the resume and preemption tests do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ssd_jax.training.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
TRAJECTORY = ("step", "loss", "grad_norm", "learning_rate", "masked_tokens", "tokens")


def launcher_env(compile_cache: Path) -> dict[str, str]:
    """One CPU device; compiled steps shared between the runs of a test through JAX's persistent
    cache (the same executable, so bitwise comparisons stay meaningful)."""
    env = dict(os.environ)
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
        JAX_COMPILATION_CACHE_DIR=str(compile_cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def train_command(workdir: Path, samples: Path, steps: int, checkpoint_every: int) -> list[str]:
    return [
        sys.executable, str(REPO / "launch" / "train.py"), f"--config={REPO / 'configs' / 'tiny.py'}",
        f"--config.workdir={workdir}", f"--config.data.samples_dir={samples}", "--config.data.max_length=128",
        "--config.data.read_threads=1", f"--config.train.steps={steps}", "--config.train.global_batch=2",
        "--config.train.warmup_steps=3", f"--config.train.checkpoint_every={checkpoint_every}",
        "--config.train.keep_checkpoints=2", "--config.train.log_every=1000",
    ]


def run_to_end(command: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        done = subprocess.run(command, check=False, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, log.read_text()[-3000:]
    return done


def signal_after_step(command: list[str], env: dict[str, str], log: Path, metrics: Path, step: int, signum: int) -> int:
    """Starts a run, sends `signum` once `metrics` shows `step` done; returns the exit status."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            while len(read_metrics(str(metrics))) < step:
                assert process.poll() is None, f"the run ended before step {step}:\n{log.read_text()[-3000:]}"
                time.sleep(0.02)
            os.kill(process.pid, signum)
            return process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def trajectory(metrics: Path) -> list[tuple]:
    return [tuple(line[name] for name in TRAJECTORY) for line in read_metrics(str(metrics))]


def final_params(final_dir: Path) -> dict[str, np.ndarray]:
    """The saved model's parameters, read back through `load_model`."""
    from flax import nnx

    import ssd_jax

    state = nnx.state(ssd_jax.load_model(str(final_dir)).model, nnx.Param).to_pure_dict()
    flat = {}

    def collect(prefix, tree):
        for key, value in tree.items():
            if isinstance(value, dict):
                collect(f"{prefix}{key}.", value)
            else:
                flat[prefix + key] = np.asarray(value)

    collect("", state)
    return flat

