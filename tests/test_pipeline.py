"""The input pipeline: filter rules, template + tokenize + mask, packing, shuffling, sharding, resume."""

import json

import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordWriter
from sample_shards import write_code_shards, write_shards
from settings_from_config import data_settings

from ssd_jax.checkpoints import tiny
from ssd_jax.data.examples import ExampleTokenizer, fit_length, next_token_example
from ssd_jax.data.filtering import filter_completions
from ssd_jax.data.pipeline import (
    NoTrainingDataError,
    prepare_data,
    training_batches,
)
from ssd_jax.data.records import read_records
from ssd_jax.errors import InputError


@pytest.fixture(scope="module")
def examples():
    return ExampleTokenizer(tiny.tiny_tokenizer(), tiny.tiny_chat_template())


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_code_shards(tmp_path_factory.mktemp("samples"), 24)


def test_minimal_filter_drops_empty_and_single_line_stubs():
    completions = ["", "  \n\t\n", "return 1", "x = 1\n\n", "```python\nprint(1)\n```", "a = 1\nb = 2"]
    result = filter_completions(completions, "minimal")
    assert result.kept == [4, 5]
    assert result.dropped == {"empty": 2, "single_line": 2}
    assert result.total == 6


def test_shortest_percent_drops_the_shortest_after_the_minimal_rule():
    rng = np.random.default_rng(1)
    sizes = rng.permutation(20) + 1
    completions = ["line one\n" + "x" * int(n) for n in sizes] + [""]
    result = filter_completions(completions, "shortest_percent", shortest_percent=10.0)
    two_shortest = set(np.argsort(sizes)[:2].tolist())
    assert result.kept == [i for i in range(20) if i not in two_shortest]
    assert result.dropped == {"empty": 1, "single_line": 0, "shortest_percent": 2}


def test_filter_none_keeps_everything_and_unknown_rules_are_named():
    assert filter_completions(["", "x"], "none").kept == [0, 1]
    with pytest.raises(ValueError, match="config.data.filter='strict'"):
        filter_completions(["x"], "strict")


def test_mask_is_one_exactly_on_the_response_and_end_of_turn(examples):
    template, tokenizer = tiny.tiny_chat_template(), tiny.tiny_tokenizer()
    messages = [{"role": "system", "content": "Answer in Python."}, {"role": "user", "content": "Square 9."}]
    completion = "```python\nprint(9 ** 2)\n```"
    tokens, mask = examples.tokens_and_mask(messages, completion)
    assert tokens.dtype == np.int32 and mask.dtype == np.int32
    assert tokenizer.decode(tokens[mask == 1]) == completion + "<|im_end|>"
    assert tokenizer.decode(tokens[mask == 0]) == template.render(messages, add_generation_prompt=True)
    first = int(np.argmax(mask))
    assert mask[:first].sum() == 0 and mask[first:].all()
    assert tokens[-1] == tokenizer.token_to_id("<|im_end|>")


def test_fit_length_drops_or_truncates_and_never_keeps_a_response_free_example():
    tokens, mask = np.arange(10, dtype=np.int32), np.array([0] * 6 + [1] * 4, np.int32)
    assert fit_length(tokens, mask, 10, "drop") is not None
    assert fit_length(tokens, mask, 8, "drop") is None
    cut_tokens, cut_mask = fit_length(tokens, mask, 8, "truncate")
    np.testing.assert_array_equal(cut_tokens, tokens[:8])
    np.testing.assert_array_equal(cut_mask, mask[:8])
    assert fit_length(tokens, mask, 6, "truncate") is None
    with pytest.raises(ValueError, match="config.data.overlong"):
        fit_length(tokens, mask, 8, "cut")


def _expected_examples(directory, examples):
    expected = []
    for record in read_records(directory):
        example = next_token_example(*examples.tokens_and_mask(record.messages, record.completion))
        expected.append(tuple(tuple(example[name].tolist()) for name in ("inputs", "targets", "weights")))
    return expected


def _segments(batches):
    """Every packed example of the batches, checking each row's segment layout on the way."""
    found = []
    for batch in batches:
        rows = {name: value.reshape(-1, value.shape[-1]) for name, value in batch.items()}
        for r in range(rows["inputs"].shape[0]):
            segment_ids = rows["segment_ids"][r]
            used = segment_ids[segment_ids > 0]
            assert (segment_ids[len(used):] == 0).all(), "padding only at the end of a row"
            assert (np.diff(used) >= 0).all() and used[0] == 1
            for segment in np.unique(used):
                where = np.flatnonzero(segment_ids == segment)
                np.testing.assert_array_equal(rows["positions"][r][where], np.arange(len(where)))
                found.append(tuple(tuple(rows[name][r][where].tolist()) for name in ("inputs", "targets", "weights")))
            assert rows["weights"][r][segment_ids == 0].sum() == 0
    return found


def test_packed_rows_hold_every_example_once(shards, examples):
    settings = data_settings(shards, max_length=512, epochs=1, read_threads=2)
    prepared = prepare_data(settings, examples)
    batches = list(training_batches(prepared, settings, examples, seed=3, examples_per_step=6, rows=2))
    assert len(batches) == 4, "six examples per step, packed or not"
    assert sorted(_segments(batches)) == sorted(_expected_examples(shards, examples))
    assert batches[0]["inputs"].shape == (1, 2, 512)


def test_unpacked_rows_reshuffle_each_epoch_and_follow_the_seed(shards, examples):
    settings = data_settings(shards, max_length=192, pack=False, epochs=2, read_threads=2)
    prepared = prepare_data(settings, examples)

    def order(seed):
        batches = training_batches(prepared, settings, examples, seed=seed, examples_per_step=2)
        return [segment for segment in _segments(batches)]

    first = order(seed=3)
    assert len(first) == 48
    epoch_one, epoch_two = first[:24], first[24:]
    assert sorted(epoch_one) == sorted(epoch_two) == sorted(_expected_examples(shards, examples))
    assert epoch_one != epoch_two
    assert order(seed=3) == first
    assert order(seed=4) != first


def test_processes_split_the_rows_of_the_same_global_batches(shards, examples):
    settings = data_settings(shards, max_length=192, pack=False, epochs=1, read_threads=2)
    prepared = prepare_data(settings, examples)

    def batches(process_index, process_count):
        return list(training_batches(prepared, settings, examples, seed=0, examples_per_step=2,
                                     process_index=process_index, process_count=process_count))

    one, halves = batches(0, 1), [batches(p, 2) for p in range(2)]
    assert len(one) == len(halves[0]) == len(halves[1]) == 12
    for whole, first, second in zip(one, *halves):
        for name, value in whole.items():
            np.testing.assert_array_equal(value, np.concatenate([first[name], second[name]], axis=1))
    assert sorted(_segments(halves[0]) + _segments(halves[1])) == sorted(_expected_examples(shards, examples))


def test_restored_iterator_state_replays_the_same_batches(shards, examples):
    settings = data_settings(shards, max_length=128, read_threads=2)
    prepared = prepare_data(settings, examples)
    dataset = training_batches(prepared, settings, examples, seed=5, examples_per_step=4, accumulation=2)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    saved = json.loads(json.dumps(iterator.get_state()))
    expected = [next(iterator) for _ in range(5)]
    resumed = iter(dataset)
    resumed.set_state(saved)
    for want in expected:
        got = next(resumed)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].shape == (2, 2, 128)
            np.testing.assert_array_equal(got[name], want[name])


def test_overlong_examples_are_counted_when_dropped_or_truncated(shards, examples):
    lengths = [len(e[0]) + 1 for e in _expected_examples(shards, examples)]
    limit = int(np.median(lengths))
    too_long = sum(n > limit for n in lengths)
    dropped = prepare_data(data_settings(shards, max_length=limit), examples)
    assert dropped.counts["dropped_overlong"] == too_long and dropped.counts["examples"] == 24 - too_long
    truncated = prepare_data(data_settings(shards, max_length=limit, overlong="truncate"), examples)
    assert truncated.counts["overlong_truncated"] == too_long and truncated.counts["examples"] == 24
    assert truncated.counts["tokens"] == sum(min(n, limit) for n in lengths)


def test_missing_empty_and_fully_filtered_data_fail_clearly(tmp_path, examples):
    with pytest.raises(InputError, match="not found"):
        prepare_data(data_settings(tmp_path / "nowhere"), examples)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no sample shards"):
        prepare_data(data_settings(empty), examples)
    ArrayRecordWriter(str(empty / "samples-process00000-00000.arrayrecord"), "group_size:1").close()
    with pytest.raises(NoTrainingDataError, match="hold no records"):
        prepare_data(data_settings(empty), examples)
    stubs = write_shards(tmp_path / "stubs", ["", "return 1", "pass"])
    with pytest.raises(NoTrainingDataError, match="'dropped_empty': 1, 'dropped_single_line': 2"):
        prepare_data(data_settings(stubs), examples)
