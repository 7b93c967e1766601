"""Host side of a decode batch: length buckets, left padding, per-row arrays.

Prompts are padded to a bucket length, one of a small fixed set (four per doubling from
`MIN_BUCKET`: 16, 20, 24, 28, 32, 40, ..., capped at the model's context), so a new prompt
length reuses a compiled program: one prefill and one decode program per (batch size, bucket).
Four steps per doubling cap the padding at a fifth of a bucket: prefill computes every padded
token and every decode step attends over the whole padded prompt. (With two steps, 1× and
1.5×, a 144-token prompt padded to 192: SmolLM2's batch-32 prefill took 33 % longer.) The
price is more programs to compile over a set of very different prompt lengths, once each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ssd_jax.sampling.keys import prompt_id_words
from ssd_jax.sampling.loop import DecodeInputs

MIN_BUCKET = 16


def length_buckets(context: int) -> tuple[int, ...]:
    """Bucket lengths: 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, ... below `context`, then `context`."""
    buckets, size = [], MIN_BUCKET
    while size < context:
        buckets.extend(b for b in (size, size * 5 // 4, size * 3 // 2, size * 7 // 4) if b < context)
        size *= 2
    return (*buckets, context)


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    for bucket in buckets:
        if length <= bucket:
            return bucket
    raise ValueError(f"a prompt of {length} tokens is longer than the largest bucket {buckets[-1]}")


@dataclasses.dataclass(frozen=True)
class BatchRow:
    """One row to decode: its prompt tokens, sampling parameters and key material."""

    prompt_id: str
    sample_index: int
    prompt_ids: Sequence[int]
    temperature: float
    top_k: int
    top_p: float
    budget: int  # most new tokens this row may draw
    adaptive: float = 0.0  # adaptive-temperature strength, 0 = off


@dataclasses.dataclass(frozen=True)
class HostBatch:
    """NumPy arrays for `loop.prefill` and `loop.decode`.

    Rows beyond `num_rows` are idle: budget 0 (done from the start) and greedy, so they never
    push the batch off the fast candidate path of `choose_tokens`.
    """

    prefill_tokens: np.ndarray  # int32 [B, P - 1]
    prefill_positions: np.ndarray  # int32 [B, P - 1]
    key_mask: np.ndarray  # bool [B, P - 1 + N]
    inputs: DecodeInputs  # of NumPy arrays
    num_rows: int  # real rows; the rest are idle padding rows


def build_batch(rows: Sequence[BatchRow], batch_size: int, bucket: int, max_new_tokens: int) -> HostBatch:
    """Left-pads `rows` (each prompt at most `bucket` tokens) into arrays of `batch_size` rows."""
    if not 0 < len(rows) <= batch_size:
        raise ValueError(f"a batch holds 1..{batch_size} rows, got {len(rows)}")
    tokens = np.zeros((batch_size, bucket), np.int32)
    positions = np.zeros((batch_size, bucket), np.int32)
    lengths = np.ones((batch_size,), np.int32)
    for r, row in enumerate(rows):
        length = len(row.prompt_ids)
        if not 0 < length <= bucket:
            raise ValueError(f"prompt {row.prompt_id!r} has {length} tokens; the bucket holds 1..{bucket}")
        tokens[r, bucket - length:] = row.prompt_ids
        positions[r, bucket - length:] = np.arange(length)
        lengths[r] = length
    padding = bucket - lengths
    slots = np.arange(bucket - 1 + max_new_tokens)
    key_mask = slots[None, :] >= padding[:, None]

    def per_row(values, dtype, idle):
        column = np.full((batch_size,), idle, dtype)
        column[: len(rows)] = values
        return column

    id_words = np.zeros((batch_size, 2), np.uint32)
    id_words[: len(rows)] = prompt_id_words([row.prompt_id for row in rows])
    inputs = DecodeInputs(
        last_token=tokens[:, -1].copy(),
        last_position=lengths - 1,
        budget=per_row([row.budget for row in rows], np.int32, 0),
        temperature=per_row([row.temperature for row in rows], np.float32, 0.0),  # idle rows: greedy
        top_k=per_row([row.top_k for row in rows], np.int32, 0),
        top_p=per_row([row.top_p for row in rows], np.float32, 1.0),
        id_words=id_words,
        sample_index=per_row([row.sample_index for row in rows], np.int32, 0),
        adaptive=per_row([row.adaptive for row in rows], np.float32, 0.0),
    )
    return HostBatch(tokens[:, :-1], positions[:, :-1], key_mask, inputs, len(rows))
