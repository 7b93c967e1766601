"""One (prompt, response) sample → token ids and the loss mask that trains only the response.

The conversation is the record's prompt messages plus the completion as the assistant turn,
rendered with the model's own chat template. The text before the assistant span (prompt turns
and the template's scaffolding up to where generation starts) and the span itself (the
response and the end-of-turn token that closes it) are tokenized separately, so the mask is
exactly 1 on the span's tokens and 0 elsewhere, whatever the tokenizer would merge across the
boundary. The template's trailing whitespace after the end-of-turn text is not trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

OVERLONG_POLICIES = ("drop", "truncate")


@dataclasses.dataclass(frozen=True)
class ExampleTokenizer:
    """Renders and tokenizes sample records with one model's tokenizer and chat template;
    `template_kwargs` go to the template as sampling passed them (e.g. `reasoning_effort`)."""

    tokenizer: Any
    chat_template: Any
    template_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.chat_template is None:
            raise ValueError(
                "the model has no chat template, so (prompt, response) pairs cannot be rendered for training; "
                "use a checkpoint with a chat template (tokenizer_config.json or chat_template.jinja)"
            )

    def tokens_and_mask(self, messages: Sequence[Mapping[str, str]], completion: str) -> tuple[np.ndarray, np.ndarray]:
        """int32 token ids and their int32 loss mask (1 on the response + end-of-turn tokens)."""
        conversation = [*messages, {"role": "assistant", "content": completion}]
        text, spans = self.chat_template.render_with_assistant_spans(conversation, **self.template_kwargs)
        start, end = spans[-1]
        prompt_ids = self.tokenizer.encode(text[:start], add_bos=False)
        response_ids = self.tokenizer.encode(text[start:end], add_bos=False)
        tokens = np.asarray([*prompt_ids, *response_ids], dtype=np.int32)
        mask = np.concatenate([np.zeros(len(prompt_ids), np.int32), np.ones(len(response_ids), np.int32)])
        return tokens, mask

    def record_tokens_and_mask(self, record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return self.tokens_and_mask(record["messages"], record["completion"])


def fit_length(
    tokens: np.ndarray, mask: np.ndarray, max_length: int, overlong: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """The example if it has at most `max_length` tokens; else its first `max_length` tokens
    (`truncate`) or None (`drop`). Also None when nothing trainable would remain."""
    if overlong not in OVERLONG_POLICIES:
        raise ValueError(f"config.data.overlong={overlong!r}: choose one of {OVERLONG_POLICIES}")
    if len(tokens) > max_length:
        if overlong == "drop":
            return None
        tokens, mask = tokens[:max_length], mask[:max_length]
    if not mask[1:].any():
        return None
    return tokens, mask


def next_token_example(tokens: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Inputs `tokens[:-1]`, targets `tokens[1:]` and float32 loss weights `mask[1:]`.

    Shifting before packing keeps every target inside its own example.
    """
    return {
        "inputs": tokens[:-1],
        "targets": tokens[1:],
        "weights": mask[1:].astype(np.float32),
    }
