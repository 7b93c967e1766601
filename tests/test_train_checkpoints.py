"""Training checkpoints: full round trip, rotation, refusing another run's work directory; metrics log."""

import json
import os

import grain
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssd_jax.training.checkpointing import RunMismatchError, TrainCheckpoints
from ssd_jax.training.metrics import MetricsLog, read_metrics

RUN = {"model": "tiny-random", "seed": 0, "train": {"steps": 10, "peak_learning_rate": 1e-3}}


def _tree_listing(root):
    return sorted(
        (os.path.relpath(os.path.join(d, f), root), os.path.getsize(os.path.join(d, f)),
         os.path.getmtime(os.path.join(d, f)))
        for d, _, files in os.walk(root) for f in files
    )


def _state():
    params = {"w": jnp.arange(6.0).reshape(2, 3), "norm": jnp.ones(3)}
    optimizer = optax.adam(1e-3)
    return params, optimizer.init(params)


def test_checkpoint_round_trips_params_optimizer_state_and_data_position(tmp_path):
    params, opt_state = _state()
    data = grain.MapDataset.range(100).shuffle(seed=1).to_iter_dataset()
    iterator = iter(data)
    seen = [next(iterator) for _ in range(3)]
    checkpoints = TrainCheckpoints(str(tmp_path / "ckpt"), RUN, keep=2)
    for step in (1, 2, 3):
        checkpoints.save(step, params, opt_state, iterator)
    checkpoints.wait()
    checkpoints.close()
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["2", "3"]
    expected_next = [next(iterator) for _ in range(4)]

    reopened = TrainCheckpoints(str(tmp_path / "ckpt"), RUN, keep=2)
    reopened.check_same_run()
    fresh = iter(data)
    restored_params, restored_opt = reopened.restore(reopened.latest_step, params, opt_state, fresh)
    reopened.close()
    assert [next(fresh) for _ in range(4)] == expected_next and len(set(seen + expected_next)) == 7
    for name in params:
        np.testing.assert_array_equal(restored_params[name], params[name])
    np.testing.assert_array_equal(restored_opt[0].mu["w"], opt_state[0].mu["w"])


def test_a_different_run_is_refused_and_nothing_is_touched(tmp_path):
    params, opt_state = _state()
    checkpoints = TrainCheckpoints(str(tmp_path / "ckpt"), RUN, keep=2)
    checkpoints.save(4, params, opt_state, iter(grain.MapDataset.range(5).to_iter_dataset()))
    checkpoints.wait()
    checkpoints.close()
    before = _tree_listing(tmp_path)
    other = {**RUN, "model": "smollm2-135m-instruct", "train": {**RUN["train"], "peak_learning_rate": 5e-6}}
    refusing = TrainCheckpoints(str(tmp_path / "ckpt"), other, keep=2)
    with pytest.raises(RunMismatchError) as error:
        refusing.check_same_run()
    refusing.close()
    message = str(error.value)
    assert "model: checkpoint has 'tiny-random', this config has 'smollm2-135m-instruct'" in message
    assert "train.peak_learning_rate: checkpoint has 0.001, this config has 5e-06" in message
    assert "train.steps" not in message
    assert _tree_listing(tmp_path) == before


def test_metrics_log_drops_the_lines_a_resumed_run_will_redo(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 6)]
    path.write_text("\n".join(lines) + '\n{"step": 6, "lo')  # the last line was cut off by a kill
    log = MetricsLog(str(path), resume_step=3, total_steps=8)
    log.write({"step": 4, "loss": 0.2, "learning_rate": 1e-3})
    log.close()
    assert [line["step"] for line in read_metrics(str(path))] == [1, 2, 3, 4]
    assert read_metrics(str(path))[3]["loss"] == 0.2
