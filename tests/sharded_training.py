"""A few training steps of the tiny model on a given mesh, for the sharding tests."""

from __future__ import annotations

import jax
import numpy as np
from sample_shards import write_code_shards
from settings_from_config import data_settings, optimizer_settings

import ssd_jax
from ssd_jax.data.examples import ExampleTokenizer
from ssd_jax.data.pipeline import prepare_data, training_batches
from ssd_jax.parallel import single_device_mesh
from ssd_jax.training import state
from ssd_jax.training.optimizer import make_optimizer, weight_decay_mask
from ssd_jax.training.step import make_train_step

ROWS, LENGTH, STEPS = 8, 128, 3


def pipeline_batches(samples_dir) -> list[dict[str, np.ndarray]]:
    """`STEPS` packed batches of `ROWS` rows from the real pipeline over 24 sample records."""
    loaded = ssd_jax.load_model("tiny-random")
    examples = ExampleTokenizer(loaded.tokenizer, loaded.chat_template)
    settings = data_settings(write_code_shards(samples_dir, 24), max_length=LENGTH, read_threads=1)
    stream = iter(training_batches(prepare_data(settings, examples), settings, examples, seed=0,
                                   examples_per_step=ROWS))
    return [next(stream) for _ in range(STEPS)]


def train_on_mesh(mesh, batches, accumulation: int = 1):
    """Per-step (loss, grad norm), the final parameters as NumPy, and the parameter shardings."""
    loaded = ssd_jax.load_model("tiny-random", mesh=mesh)
    graphdef, params = state.split_params(loaded.model)
    settings = optimizer_settings(steps=STEPS, peak_learning_rate=1e-3, final_learning_rate=1e-4, warmup_steps=1)
    optimizer = make_optimizer(settings, weight_decay_mask(loaded.model))
    param_shardings = state.param_shardings(loaded.model, mesh)
    opt_shardings = state.opt_state_shardings(optimizer, params, param_shardings, mesh)
    opt_state = state.init_opt_state(optimizer, params, opt_shardings)
    shape = (accumulation, ROWS // accumulation, LENGTH)
    batch_shardings = state.batch_shardings({name: shape for name in batches[0]}, mesh)
    step = make_train_step(graphdef, optimizer, param_shardings, opt_shardings, batch_shardings)
    history = []
    for batch in batches:
        batch = {name: value.reshape(shape) for name, value in batch.items()}
        params, opt_state, metrics = step(params, opt_state, state.put_batch(batch, batch_shardings))
        history.append((float(metrics["loss"]), float(metrics["grad_norm"])))
    return history, jax.tree.map(np.asarray, params), param_shardings


def one_device_run(batches):
    return train_on_mesh(single_device_mesh(), batches)


def assert_same_training(got, want, mesh_shape) -> None:
    """Equal losses and gradient norms; parameters within 2 % of one step's largest change, the
    peak learning rate 1e-3 (Adam magnifies rounding where a gradient is ~0: its update there is
    ±lr whatever the gradient's size, so a different summation order moves it); parameters
    split over every mesh axis of size > 1 except `data` (which only splits the batch)."""
    history, params, shardings = got
    want_history, want_params, _ = want
    np.testing.assert_allclose(history, want_history, rtol=2e-5)
    flat_want = dict(jax.tree_util.tree_leaves_with_path(want_params))
    for path, value in jax.tree_util.tree_leaves_with_path(params):
        np.testing.assert_allclose(value, flat_want[path], rtol=1e-4, atol=2e-5, err_msg=str(path))
    used = set()
    for sharding in jax.tree.leaves(shardings):
        for entry in sharding.spec:
            used.update((entry,) if isinstance(entry, str) else entry or ())
    expected = {axis for axis, size in zip(("data", "fsdp", "model"), mesh_shape, strict=True) if size > 1}
    assert used == expected - {"data"}
