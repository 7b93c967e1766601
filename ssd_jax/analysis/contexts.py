"""The contexts the diagnostics look at: prompts with a response, as token ids.

Every position of a response is one context: the prompt plus the response so far, whose
next-token distribution is measured. Responses come from sample shards (what `launch/sample.py`
writes) or from a JSONL file with one object per line holding `prompt_text` (the prompt as the
model sees it, chat template applied) and `completion` (optional `completion_token_ids`, `id`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

from ssd_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Context:
    """A prompt and a response to it, as token ids."""

    id: str
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]


def _from_jsonl(path: str) -> list[dict]:
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number} is not JSON ({error.msg}); each line must be one object") from error
            missing = [key for key in ("prompt_text", "completion") if not isinstance(row.get(key), str)]
            if missing:
                raise InputError(f"{path}:{number} lacks string field(s) {', '.join(missing)}: each line needs "
                                 "prompt_text (the rendered prompt) and completion")
            rows.append({"id": str(row.get("id", row.get("problem_id", number))), "prompt_text": row["prompt_text"],
                         "completion": row["completion"], "completion_token_ids": row.get("completion_token_ids")})
    return rows


def _from_shards(directory: str) -> list[dict]:
    from ssd_jax.data.records import read_records

    return [{"id": f"{r.prompt_id}#{r.sample_index}", "prompt_text": r.prompt_text, "completion": r.completion,
             "completion_token_ids": r.completion_token_ids} for r in read_records(directory)]


def read_contexts(path: str, tokenizer, *, limit: int = 0, max_response_tokens: int = 0) -> list[Context]:
    """Contexts from a sample shard directory or a JSONL file, tokenized with `tokenizer`.

    `limit` keeps the first N responses, `max_response_tokens` the first N tokens of each (0 = all).
    """
    if os.path.isdir(path):
        rows = _from_shards(path)
    elif os.path.isfile(path):
        rows = _from_jsonl(path)
    else:
        raise InputError(f"analysis input {path!r} does not exist: give a sample shard directory or a JSONL file")
    rows = rows[:limit] if limit else rows
    contexts = []
    for row in rows:
        response = row["completion_token_ids"] or tokenizer.encode(row["completion"])
        response = response[:max_response_tokens] if max_response_tokens else response
        if response:
            contexts.append(Context(row["id"], tuple(tokenizer.encode(row["prompt_text"])), tuple(int(t) for t in response)))
    if not contexts:
        raise InputError(f"analysis input {path!r} holds no non-empty responses")
    return contexts


def response_positions(prompt_length: int, response_length: int) -> range:
    """Positions whose next-token distribution predicts a response token."""
    return range(prompt_length - 1, prompt_length + response_length - 1)


def token_rows(contexts: Sequence[Context], length: int) -> tuple[list[list[int]], list[list[bool]]]:
    """Right-padded token rows of `length` and masks of their response positions."""
    tokens, valid = [], []
    for context in contexts:
        ids = list(context.prompt_ids + context.response_ids)[:length]
        mask = [False] * length
        for position in response_positions(len(context.prompt_ids), len(context.response_ids)):
            if position < length - 1:
                mask[position] = True
        tokens.append(ids + [0] * (length - len(ids)))
        valid.append(mask)
    return tokens, valid
