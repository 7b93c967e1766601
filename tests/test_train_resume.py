"""Exact resume: a run killed with SIGKILL and restarted equals the uninterrupted run, bitwise."""

import signal
import time

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

STEPS, CHECKPOINT_EVERY, KILL_AFTER = 40, 5, 12


def test_sigkill_then_restart_reproduces_the_uninterrupted_run(tmp_path):
    samples = write_code_shards(tmp_path / "samples", 24)
    env = launcher_env(tmp_path / "jax_cache")
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run_to_end(train_command(reference, samples, STEPS, CHECKPOINT_EVERY), env, tmp_path / "reference.log")

    command = train_command(interrupted, samples, STEPS, CHECKPOINT_EVERY)
    metrics = interrupted / "train" / "metrics.jsonl"
    status = signal_after_step(command, env, tmp_path / "killed.log", metrics, KILL_AFTER, signal.SIGKILL)
    assert status == -signal.SIGKILL
    steps_before_kill = len(trajectory(metrics))
    assert KILL_AFTER <= steps_before_kill < STEPS and not (interrupted / "train" / "final").exists()

    started = time.perf_counter()
    run_to_end(command, env, tmp_path / "restarted.log")
    resumed_from = (tmp_path / "restarted.log").read_text().split("resuming from the checkpoint of step ")[1]
    assert CHECKPOINT_EVERY <= int(resumed_from.split()[0]) <= steps_before_kill
    print(f"killed after step {steps_before_kill}, resumed from step {resumed_from.split()[0]}, "
          f"restart took {time.perf_counter() - started:.1f} s")

    expected = trajectory(reference / "train" / "metrics.jsonl")
    assert len(expected) == STEPS
    assert trajectory(metrics) == expected
    want, got = final_params(reference / "train" / "final"), final_params(interrupted / "train" / "final")
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
