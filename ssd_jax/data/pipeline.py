"""The Grain input pipeline: sample shards → filtered, templated, tokenized, masked, packed batches.

Two phases:
  `prepare_data` reads every record once (on every process, so all agree on the same example
  list): it applies the completion filter, tokenizes the survivors to find the over-long ones,
  and counts what each rule dropped.
  `training_batches` is the lazy Grain pipeline over that list: shuffle (reshuffled each epoch,
  seeded) → repeat → render + tokenize + mask → pack (Grain's first-fit packing) or pad →
  batch the global rows of a step → this process's rows → `[accumulation, rows, max_length]`.
  Every process builds the same global batches and keeps its own rows, so a step trains on the
  same rows whatever the number of processes (a 2-host run equals a 1-host run). Its
  iterator's `get_state`/`set_state` is what the trainer checkpoints, so a resumed run sees the
  same batches.

A batch holds `inputs`, `targets` (int32), `weights` (float32 loss mask), `segment_ids` (0 on
padding, then 1, 2, ... per packed example) and `positions` (restarting at 0 in each example).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import grain
import numpy as np

from ssd_jax.data.examples import ExampleTokenizer, fit_length, next_token_example
from ssd_jax.data.filtering import filter_completions
from ssd_jax.data.records import SampleRecordSource
from ssd_jax.errors import InputError

logger = logging.getLogger(__name__)

_SEQUENCE_FEATURES = ("inputs", "targets", "weights")


class NoTrainingDataError(InputError):
    """Nothing is left to train on after filtering and length limits."""


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """The `config.data` fields the pipeline reads (documented in configs/base.py)."""

    samples_dir: str
    filter: str = "minimal"
    shortest_percent: float = 10.0
    max_length: int = 4096
    overlong: str = "drop"
    pack: bool = True
    epochs: int = 0
    read_threads: int = 4

    def __post_init__(self):
        if self.max_length < 2:
            raise ValueError(f"config.data.max_length={self.max_length}: need at least 2 tokens per row")
        if self.epochs < 0:
            raise ValueError(f"config.data.epochs={self.epochs}: give 0 (repeat until train.steps) or a positive count")


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """The records to train on (indices into `source`) and what preparing them counted."""

    source: SampleRecordSource
    indices: list[int]
    counts: dict[str, int]


def prepare_data(settings: DataSettings, examples: ExampleTokenizer) -> PreparedData:
    """Reads, filters and length-checks every record; raises if nothing trainable remains."""
    source = SampleRecordSource(settings.samples_dir)
    if len(source) == 0:
        raise NoTrainingDataError(f"the sample shards in {settings.samples_dir} hold no records")
    # A canonical order, so the data (and its shuffle) do not depend on how many processes
    # wrote the shards or in which order their records landed.
    stored = [source[i] for i in range(len(source))]
    order = sorted(range(len(stored)), key=lambda i: (stored[i]["prompt_id"], stored[i]["sample_index"]))
    records = [stored[i] for i in order]
    selected = filter_completions([r["completion"] for r in records], settings.filter, settings.shortest_percent)
    counts = {"records": len(records), **{f"dropped_{k}": v for k, v in selected.dropped.items()}}
    counts.update(dropped_overlong=0, truncated=0, tokens=0, trained_tokens=0)
    indices = []
    for index in selected.kept:
        tokens, mask = examples.record_tokens_and_mask(records[index])
        fitted = fit_length(tokens, mask, settings.max_length, settings.overlong)
        if fitted is None:
            counts["dropped_overlong"] += 1
            continue
        counts["truncated"] += int(len(fitted[0]) < len(tokens))
        counts["tokens"] += len(fitted[0])
        counts["trained_tokens"] += int(fitted[1][1:].sum())
        indices.append(order[index])
    counts["examples"] = len(indices)
    logger.info("training data from %s: %s", settings.samples_dir, counts)
    if not indices:
        raise NoTrainingDataError(
            f"no training examples left in {settings.samples_dir}: {counts}. Use a looser config.data.filter "
            f"(now {settings.filter!r}), a larger config.data.max_length (now {settings.max_length}) or "
            "config.data.overlong='truncate', or sample more data."
        )
    return PreparedData(source, indices, counts)


class _Subset:
    """Random access to the chosen records of a source."""

    def __init__(self, source: SampleRecordSource, indices: list[int]):
        self._source, self._indices = source, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._source[self._indices[index]]


def training_batches(
    prepared: PreparedData,
    settings: DataSettings,
    examples: ExampleTokenizer,
    *,
    seed: int,
    rows: int,
    accumulation: int,
    process_index: int = 0,
    process_count: int = 1,
) -> grain.IterDataset:
    """This process's share of each step's `rows` global rows, as `[accumulation, local rows // accumulation, L]`.

    Every process shuffles, packs and batches the same example list with the same seed (they
    all read every record, as `prepare_data` does), then keeps rows
    `[process_index * local, (process_index + 1) * local)` of each global batch: the rows that
    `jax.make_array_from_process_local_data` expects from it.
    """
    if rows % process_count or (rows // process_count) % accumulation:
        raise ValueError(
            f"{rows} rows per step do not split into {process_count} processes × {accumulation} accumulation steps"
        )
    if not 0 <= seed < 2**32:
        raise ValueError(f"config.seed={seed}: the data shuffle needs a seed in [0, 2**32)")
    local = rows // process_count
    mine = slice(process_index * local, (process_index + 1) * local)

    def to_example(record: dict[str, Any]) -> dict[str, np.ndarray]:
        tokens, mask = examples.record_tokens_and_mask(record)
        fitted = fit_length(tokens, mask, settings.max_length, settings.overlong)
        if fitted is None:
            raise RuntimeError(f"record {record['prompt_id']}/{record['sample_index']} changed since prepare_data")
        return next_token_example(*fitted)

    dataset = grain.MapDataset.source(_Subset(prepared.source, prepared.indices)).shuffle(seed=seed)
    dataset = dataset.repeat(settings.epochs or None).map(to_example)
    read = grain.ReadOptions(num_threads=settings.read_threads, prefetch_buffer_size=2 * rows)
    stream = dataset.to_iter_dataset(read)
    length = settings.max_length
    if settings.pack:
        stream = grain.experimental.FirstFitPackIterDataset(
            stream, length_struct={name: length for name in _SEQUENCE_FEATURES},
            num_packing_bins=rows, shuffle_bins=False,
        ).map(_packed_row)
    else:
        stream = stream.map(lambda example: _padded_row(example, length))
    stream = stream.batch(rows, drop_remainder=True)
    return stream.map(lambda batch: _split_accumulation({k: v[mine] for k, v in batch.items()}, accumulation))


def _packed_row(packed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        **{name: packed[name] for name in _SEQUENCE_FEATURES},
        "segment_ids": packed["inputs_segment_ids"],
        "positions": packed["inputs_positions"],
    }


def _padded_row(example: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """One example alone in a row, padded to `length`."""
    n = len(example["inputs"])
    row = {name: np.zeros(length, example[name].dtype) for name in _SEQUENCE_FEATURES}
    for name in _SEQUENCE_FEATURES:
        row[name][:n] = example[name]
    row["segment_ids"] = (np.arange(length) < n).astype(np.int32)
    row["positions"] = np.where(np.arange(length) < n, np.arange(length), 0).astype(np.int32)
    return row


def _split_accumulation(batch: dict[str, np.ndarray], accumulation: int) -> dict[str, np.ndarray]:
    return {name: value.reshape(accumulation, -1, *value.shape[1:]) for name, value in batch.items()}
