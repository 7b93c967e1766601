"""The Grain input pipeline: sample shards → filtered, templated, tokenized, masked, packed batches.

Two phases:
  `prepare_data` reads every record once (on every process, so all agree on the same example
  list): it applies the completion filter, tokenizes the survivors to find the over-long ones,
  and counts what each rule dropped.
  `training_batches` is the lazy Grain pipeline over that list: shuffle (reshuffled each epoch,
  seeded) → repeat → render + tokenize + mask → the step's `examples_per_step` examples →
  split into `accumulation` micro-batches → each micro-batch packed into its rows (first-fit
  decreasing) or one example per padded row → this process's rows →
  `[accumulation, rows, max_length]`. Every process builds the same global batches and keeps
  its own rows, so a step trains on the same rows whatever the number of processes (a 2-host
  run equals a 1-host run). Its iterator's `get_state`/`set_state` is what the trainer
  checkpoints, so a resumed run sees the same batches.

Examples per step: `train.global_batch` counts examples (the paper's batch of 32, Table 3, is
32 samples per step). Packing is a throughput choice only: it puts a micro-batch's examples
into fewer rows (`data.packed_rows`, or the fewest that hold every micro-batch of the run), it
never adds examples to a step, and the loss (mean cross-entropy per trained token of the step)
is the same packed or not.

A batch holds `inputs`, `targets` (int32), `weights` (float32 loss mask), `segment_ids` (0 on
padding, then 1, 2, ... per packed example) and `positions` (restarting at 0 in each example).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
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
    """The `config.data` fields the pipeline reads (documented, with their defaults, in
    configs/base.py), and the chat-template keyword arguments the samples were rendered with
    (`config.prompts`). Built by `from_config`; no field has a default of its own."""

    samples_dir: str
    filter: str
    shortest_percent: float
    max_length: int
    overlong: str
    pack: bool
    packed_rows: int
    truncated: str
    chat_template_kwargs: dict[str, Any]
    epochs: int
    read_threads: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any], samples_dir: str) -> DataSettings:
        """`config.data` and `config.prompts.chat_template_kwargs`; the shards are read from
        `samples_dir` (the caller resolves an empty `data.samples_dir` to its run's samples)."""
        data, kwargs = config["data"], config["prompts"]["chat_template_kwargs"]
        return cls(
            samples_dir=str(samples_dir), filter=str(data["filter"]), shortest_percent=float(data["shortest_percent"]),
            max_length=int(data["max_length"]), overlong=str(data["overlong"]), pack=bool(data["pack"]),
            packed_rows=int(data["packed_rows"]), truncated=str(data["truncated"]),
            chat_template_kwargs=dict(kwargs.to_dict() if hasattr(kwargs, "to_dict") else kwargs),
            epochs=int(data["epochs"]), read_threads=int(data["read_threads"]),
        )

    def __post_init__(self):
        if self.max_length < 2:
            raise ValueError(f"config.data.max_length={self.max_length}: need at least 2 tokens per row")
        if self.packed_rows < 0:
            raise ValueError(f"config.data.packed_rows={self.packed_rows}: give 0 (the fewest that fit) or a row count")
        if self.epochs < 0:
            raise ValueError(f"config.data.epochs={self.epochs}: give 0 (repeat until train.steps) or a positive count")


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """The records to train on (indices into `source`), each one's length in tokens as the
    model reads it (inputs), and what preparing them counted."""

    source: SampleRecordSource
    indices: list[int]
    counts: dict[str, int]
    lengths: list[int]


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
    selected = filter_completions(
        [r["completion"] for r in records], settings.filter, settings.shortest_percent,
        finish_reasons=[r["finish_reason"] for r in records], truncated=settings.truncated,
    )
    counts = {"records": len(records), **{f"dropped_{k}": v for k, v in selected.dropped.items()}}
    counts.update(dropped_overlong=0, overlong_truncated=0, tokens=0, trained_tokens=0)
    indices, lengths = [], []
    for index in selected.kept:
        tokens, mask = examples.record_tokens_and_mask(records[index])
        fitted = fit_length(tokens, mask, settings.max_length, settings.overlong)
        if fitted is None:
            counts["dropped_overlong"] += 1
            continue
        counts["overlong_truncated"] += int(len(fitted[0]) < len(tokens))
        counts["tokens"] += len(fitted[0])
        counts["trained_tokens"] += int(fitted[1][1:].sum())
        indices.append(order[index])
        lengths.append(len(fitted[0]) - 1)  # next-token inputs: one fewer than the tokens
    counts["examples"] = len(indices)
    logger.info("training data from %s: %s", settings.samples_dir, counts)
    if not indices:
        raise NoTrainingDataError(
            f"no training examples left in {settings.samples_dir}: {counts}. Use a looser config.data.filter "
            f"(now {settings.filter!r}), a larger config.data.max_length (now {settings.max_length}) or "
            "config.data.overlong='truncate', config.data.truncated='keep' to train on samples cut at their "
            "token budget, or sample more data (with a larger budget)."
        )
    return PreparedData(source, indices, counts, lengths)


class _Subset:
    """Random access to the chosen records of a source."""

    def __init__(self, source: SampleRecordSource, indices: list[int]):
        self._source, self._indices = source, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._source[self._indices[index]]


def step_order(prepared: PreparedData, settings: DataSettings, seed: int) -> grain.MapDataset:
    """The example indices in training order: shuffled (seeded), reshuffled each epoch, repeated
    `epochs` times (forever for 0). Batches and the packing plan read the same order."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"config.seed={seed}: the data shuffle needs a seed in [0, 2**32)")
    return grain.MapDataset.range(len(prepared.indices)).shuffle(seed=seed).repeat(settings.epochs or None)


def rows_per_micro_batch(
    prepared: PreparedData,
    settings: DataSettings,
    *,
    seed: int,
    examples_per_step: int,
    accumulation: int,
    steps: int,
    row_multiple: int = 1,
) -> int:
    """Global rows of one micro-batch: its examples unpacked; packed, `data.packed_rows` (checked
    against every micro-batch of the run's `steps`) or, for 0, the fewest rows — a multiple of
    `row_multiple` — that hold every micro-batch of the run."""
    per_micro = _examples_per_micro_batch(examples_per_step, accumulation)
    if not settings.pack:
        return per_micro
    order = step_order(prepared, settings, seed)
    available = len(order) // per_micro if settings.epochs else steps * accumulation
    needed = 1
    for micro in range(min(steps * accumulation, available)):
        positions = range(micro * per_micro, (micro + 1) * per_micro)
        lengths = [prepared.lengths[order[p]] for p in positions]
        needed = max(needed, len(_first_fit_decreasing(lengths, settings.max_length)))
    if settings.packed_rows:
        if settings.packed_rows % row_multiple:
            raise ValueError(
                f"config.data.packed_rows={settings.packed_rows} must be a multiple of {row_multiple} "
                "(the processes and the mesh's data × fsdp devices split each micro-batch's rows)"
            )
        if settings.packed_rows < needed:
            raise ValueError(
                f"config.data.packed_rows={settings.packed_rows}: some micro-batch of {per_micro} examples needs "
                f"{needed} rows of config.data.max_length={settings.max_length} tokens; give at least {needed}, "
                "or 0 for the fewest that fit"
            )
        return settings.packed_rows
    return min(-(-needed // row_multiple) * row_multiple, max(per_micro, row_multiple))


def training_batches(
    prepared: PreparedData,
    settings: DataSettings,
    examples: ExampleTokenizer,
    *,
    seed: int,
    examples_per_step: int,
    accumulation: int = 1,
    rows: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> grain.IterDataset:
    """This process's share of each step, as `[accumulation, rows // process_count, L]` arrays.

    A step holds exactly `examples_per_step` examples, split into `accumulation` micro-batches;
    each micro-batch's examples fill its `rows` global rows (default: one row per example;
    packed, see `rows_per_micro_batch`). Every process shuffles and packs the same example list
    with the same seed (they all read every record, as `prepare_data` does), then keeps rows
    `[process_index * local, (process_index + 1) * local)` of each micro-batch: the rows that
    `jax.make_array_from_process_local_data` expects from it.
    """
    per_micro = _examples_per_micro_batch(examples_per_step, accumulation)
    rows = per_micro if rows is None else rows
    if not settings.pack and rows != per_micro:
        raise ValueError(f"unpacked micro-batches have one row per example ({per_micro}), not {rows}")
    if rows % process_count:
        raise ValueError(f"{rows} rows per micro-batch do not split over {process_count} processes")
    local = rows // process_count
    mine = slice(process_index * local, (process_index + 1) * local)
    subset = _Subset(prepared.source, prepared.indices)

    def to_example(index: int) -> dict[str, np.ndarray]:
        record = subset[index]
        tokens, mask = examples.record_tokens_and_mask(record)
        fitted = fit_length(tokens, mask, settings.max_length, settings.overlong)
        if fitted is None:
            raise RuntimeError(f"record {record['prompt_id']}/{record['sample_index']} changed since prepare_data")
        return next_token_example(*fitted)

    def to_step(step_examples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        micro_batches = [
            _micro_batch_rows(step_examples[a * per_micro:(a + 1) * per_micro], rows, settings)
            for a in range(accumulation)
        ]
        return {name: np.stack([m[name][mine] for m in micro_batches]) for name in micro_batches[0]}

    dataset = step_order(prepared, settings, seed).map(to_example)
    read = grain.ReadOptions(num_threads=settings.read_threads, prefetch_buffer_size=2 * examples_per_step)
    stream = dataset.to_iter_dataset(read)
    return stream.batch(examples_per_step, drop_remainder=True, batch_fn=list).map(to_step)


def _examples_per_micro_batch(examples_per_step: int, accumulation: int) -> int:
    if examples_per_step < 1 or accumulation < 1 or examples_per_step % accumulation:
        raise ValueError(
            f"{examples_per_step} examples per step do not split into {accumulation} accumulation steps"
        )
    return examples_per_step // accumulation


def _first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices into `lengths` grouped into bins of at most `capacity`: longest first, each into
    the first bin with room (ties keep the earlier example first)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        target = next((b for b, free in enumerate(room) if free >= lengths[index]), None)
        if target is None:
            bins.append([])
            room.append(capacity)
            target = len(bins) - 1
        bins[target].append(index)
        room[target] -= lengths[index]
    return bins


def _micro_batch_rows(examples: list[dict[str, np.ndarray]], rows: int, settings: DataSettings) -> dict[str, np.ndarray]:
    """`rows` rows of `max_length`: one example each (unpacked), or the examples packed."""
    length = settings.max_length
    if settings.pack:
        groups = _first_fit_decreasing([len(e["inputs"]) for e in examples], length)
    else:
        groups = [[i] for i in range(len(examples))]
    if len(groups) > rows:
        raise ValueError(
            f"a micro-batch of {len(examples)} examples needs {len(groups)} rows of {length} tokens, more than "
            f"config.data.packed_rows={rows}: raise it, or give 0 for the fewest that fit"
        )
    batch = {name: np.zeros((rows, length), examples[0][name].dtype) for name in _SEQUENCE_FEATURES}
    batch["segment_ids"] = np.zeros((rows, length), np.int32)
    batch["positions"] = np.zeros((rows, length), np.int32)
    for row, group in enumerate(groups):
        start = 0
        for segment, index in enumerate(group, start=1):
            example = examples[index]
            n = len(example["inputs"])
            for name in _SEQUENCE_FEATURES:
                batch[name][row, start:start + n] = example[name]
            batch["segment_ids"][row, start:start + n] = segment
            batch["positions"][row, start:start + n] = np.arange(n)
            start += n
    return batch
