"""`train.global_batch` counts examples: packing puts a step's examples into fewer rows and
changes nothing else — the same examples per step, the same loss, the same gradients."""

import dataclasses

import jax
import numpy as np
import pytest
from sample_shards import write_code_shards
from settings_from_config import data_settings

import ssd_jax
from ssd_jax.data.examples import ExampleTokenizer
from ssd_jax.data.pipeline import prepare_data, rows_per_micro_batch, training_batches
from ssd_jax.training import state
from ssd_jax.training.step import loss_and_grads

EXAMPLES_PER_STEP, ACCUMULATION, LENGTH, STEPS = 8, 2, 384, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    loaded = ssd_jax.load_model("tiny-random")  # float32, one device
    examples = ExampleTokenizer(loaded.tokenizer, loaded.chat_template)
    settings = data_settings(write_code_shards(tmp_path_factory.mktemp("samples"), 24), max_length=LENGTH,
                             read_threads=1)
    return loaded, examples, settings, prepare_data(settings, examples)


def _steps(run, pack: bool) -> tuple[int, list[dict[str, np.ndarray]]]:
    _, examples, settings, prepared = run
    settings = dataclasses.replace(settings, pack=pack)
    rows = rows_per_micro_batch(prepared, settings, seed=7, examples_per_step=EXAMPLES_PER_STEP,
                                accumulation=ACCUMULATION, steps=STEPS)
    stream = iter(training_batches(prepared, settings, examples, seed=7, examples_per_step=EXAMPLES_PER_STEP,
                                   accumulation=ACCUMULATION, rows=rows))
    return rows, [next(stream) for _ in range(STEPS)]


def _examples_of(batch: dict[str, np.ndarray]) -> list[tuple[int, ...]]:
    """The input tokens of every example in each micro-batch (sorted), read from the segments."""
    found = []
    for micro in range(batch["inputs"].shape[0]):
        examples = []
        for row in range(batch["inputs"].shape[1]):
            segments = batch["segment_ids"][micro, row]
            for segment in np.unique(segments[segments > 0]):
                examples.append(tuple(batch["inputs"][micro, row][segments == segment].tolist()))
        found.append(sorted(examples))
    return found


def _pad_rows(batch: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """The batch with empty rows (segment 0, weight 0) appended up to `rows` rows."""
    return {name: np.pad(value, ((0, 0), (0, rows - value.shape[1]), (0, 0))) for name, value in batch.items()}


def test_packed_and_unpacked_steps_hold_the_same_examples_and_give_the_same_loss_and_gradients(run):
    loaded = run[0]
    unpacked_rows, unpacked = _steps(run, pack=False)
    packed_rows, packed = _steps(run, pack=True)
    assert unpacked_rows == EXAMPLES_PER_STEP // ACCUMULATION
    assert packed_rows < unpacked_rows, "packing puts the examples into fewer rows"
    graphdef, params = state.split_params(loaded.model)
    step = jax.jit(lambda params, batch: loss_and_grads(graphdef, params, batch))
    for plain, dense in zip(unpacked, packed):
        assert plain["inputs"].shape == (ACCUMULATION, unpacked_rows, LENGTH)
        assert dense["inputs"].shape == (ACCUMULATION, packed_rows, LENGTH)
        assert _examples_of(plain) == _examples_of(dense)
        assert sum(len(m) for m in _examples_of(dense)) == EXAMPLES_PER_STEP
        assert plain["weights"].sum() == dense["weights"].sum()
        plain_loss, plain_grads = step(params, plain)
        dense_loss, dense_grads = step(params, _pad_rows(dense, unpacked_rows))  # one compiled shape
        np.testing.assert_allclose(float(dense_loss), float(plain_loss), rtol=1e-5)
        for got, want in zip(jax.tree.leaves(dense_grads), jax.tree.leaves(plain_grads)):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-6)


def test_a_packed_row_count_too_small_for_some_micro_batch_is_refused_up_front(run):
    _, _, settings, prepared = run
    needed = rows_per_micro_batch(prepared, settings, seed=7, examples_per_step=16, accumulation=1, steps=1)
    too_few = dataclasses.replace(settings, max_length=LENGTH // 4, overlong="truncate", packed_rows=1)
    with pytest.raises(ValueError, match=r"config.data.packed_rows=1: .* needs \d+ rows"):
        rows_per_micro_batch(prepare_data(too_few, run[1]), too_few, seed=7, examples_per_step=16,
                             accumulation=1, steps=1)
    assert 1 <= needed < 16
