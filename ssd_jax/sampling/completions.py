"""Turning one decoded row into a `Completion`: drop the end token, decode, apply stop strings.

Stop strings are matched on the host after generation (the device loop only knows token
ids): the text is cut just before the earliest occurrence of any stop string and the finish
reason becomes `stop`. Generation is not shortened by a stop string, so a row keeps decoding
until an end token or its budget; use stop token ids where that cost matters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

FINISH_LENGTH, FINISH_EOS, FINISH_STOP = 0, 1, 2  # How a sample ended: its budget, an end token, a stop token.
FINISH_REASONS = {FINISH_EOS: "eos", FINISH_STOP: "stop", FINISH_LENGTH: "length"}


@dataclasses.dataclass(frozen=True)
class Completion:
    """One sampled response.

    `token_ids` never include the token that ended the row (eos or stop id): `text` is their
    decoding. With a stop string, `text` ends just before it and `token_ids` (and the
    log-probs) keep the tokens up to the one that completed it. `logprobs` are under the model
    (T = 1, untruncated); `sampling_logprobs` under the filtered distribution it was drawn from.
    """

    prompt_id: str
    sample_index: int
    token_ids: list[int]
    text: str
    finish_reason: str  # "eos" | "stop" | "length"
    logprobs: list[float]
    sampling_logprobs: list[float]
    prompt_tokens: int


def _earliest_stop(text: str, stop_strings: Sequence[str]) -> tuple[int, str] | None:
    found = [(text.find(stop), stop) for stop in stop_strings if stop and stop in text]
    return min(found) if found else None


def _tokens_through(tokenizer, token_ids: Sequence[int], prefix: str) -> int:
    """The fewest leading tokens whose decoding starts with `prefix` (binary search)."""
    low, high = 1, len(token_ids)
    while low < high:
        middle = (low + high) // 2
        if tokenizer.decode(token_ids[:middle]).startswith(prefix):
            high = middle
        else:
            low = middle + 1
    return high


def make_completion(
    tokenizer,
    prompt_id: str,
    sample_index: int,
    prompt_tokens: int,
    tokens: np.ndarray,
    model_logprobs: np.ndarray,
    sampling_logprobs: np.ndarray,
    num_tokens: int,
    finish: int,
    stop_strings: Sequence[str] = (),
) -> Completion:
    """The Completion of one sample's drawn `tokens` (the first `num_tokens`) and log-probs."""
    kept = num_tokens - (finish != FINISH_LENGTH)
    ids = [int(t) for t in tokens[:kept]]
    text = tokenizer.decode(ids)
    reason = FINISH_REASONS[int(finish)]
    stop = _earliest_stop(text, stop_strings)
    if stop is not None:
        start, stop_string = stop
        kept = _tokens_through(tokenizer, ids, text[: start + len(stop_string)])
        ids, text, reason = ids[:kept], text[:start], "stop"
    return Completion(
        prompt_id=prompt_id,
        sample_index=sample_index,
        token_ids=ids,
        text=text,
        finish_reason=reason,
        logprobs=[float(x) for x in model_logprobs[:kept]],
        sampling_logprobs=[float(x) for x in sampling_logprobs[:kept]],
        prompt_tokens=prompt_tokens,
    )
