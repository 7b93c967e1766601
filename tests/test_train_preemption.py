"""SIGTERM (a TPU VM preemption) mid-run: a clean exit with a checkpoint that the rerun resumes."""

import signal

import numpy as np
from sample_shards import write_code_shards
from train_runs import (
    final_params,
    launcher_env,
    run_to_end,
    signal_after_step,
    train_command,
    trajectory,
)

STEPS, CHECKPOINT_EVERY, TERMINATE_AFTER = 30, 10, 7


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes_from_it(tmp_path):
    samples = write_code_shards(tmp_path / "samples", 24)
    env = launcher_env(tmp_path / "jax_cache")
    workdir = tmp_path / "run"
    command = train_command(workdir, samples, STEPS, CHECKPOINT_EVERY)
    metrics = workdir / "train" / "metrics.jsonl"
    log = tmp_path / "terminated.log"

    status = signal_after_step(command, env, log, metrics, TERMINATE_AFTER, signal.SIGTERM)
    assert status == 0, log.read_text()[-3000:]
    stopped_at = len(trajectory(metrics))
    assert TERMINATE_AFTER <= stopped_at < STEPS
    assert f"stopped by SIGTERM after step {stopped_at}" in log.read_text()
    checkpoints = sorted(int(p.name) for p in (workdir / "train" / "checkpoints").iterdir() if p.name.isdigit())
    assert checkpoints[-1] == stopped_at, "the preemption checkpoint is the step the run stopped at"
    assert not (workdir / "train" / "final").exists()
    before = trajectory(metrics)

    run_to_end(command, env, tmp_path / "restarted.log")
    assert f"resuming from the checkpoint of step {stopped_at}" in (tmp_path / "restarted.log").read_text()
    after = trajectory(metrics)
    assert after[:stopped_at] == before
    assert [line[0] for line in after] == list(range(1, STEPS + 1))
    assert after[-1][1] < after[0][1], "training continued to lower the loss"
    params = final_params(workdir / "train" / "final")
    assert all(np.isfinite(value).all() for value in params.values())
