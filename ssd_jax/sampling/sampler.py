"""`Sampler`: batched, bucketed, reproducible sampling from a loaded model.

    sampler = Sampler(loaded, max_new_tokens=1024, batch_size=32, seed=0)
    completions = sampler.generate([SampleRequest("p1", 0, prompt_text, 0.8, 20, 0.95), ...])

Requests are tokenized, sorted by prompt length (longest first) and cut into batches of
`batch_size` rows, each padded to its length bucket (`batching.length_buckets`). Each row
draws its tokens with keys from (seed, prompt id, sample index, position) (`keys`), so a
completion is the same whichever batch, bucket or mesh it runs in — up to float rounding:
logits computed under another padding or sharding can differ in the last bits, which changes
a greedy token only at a near-tie of the top two logits and a sampled one only when its
uniform lies within ~1e-7 of a cumulative boundary.

A row ends at an end-of-sequence token (the checkpoint's eos ids and the chat template's
end-of-turn token), at a user stop token id, at its token budget, or — checked on the host
after generation, see `completions` — at a stop string.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from tqdm import tqdm

from ssd_jax.sampling.batching import (
    BatchRow,
    HostBatch,
    bucket_for,
    build_batch,
    length_buckets,
)
from ssd_jax.sampling.completions import Completion, make_completion
from ssd_jax.sampling.programs import SamplingPrograms


@dataclasses.dataclass(frozen=True)
class SampleRequest:
    """One sample to draw: sample number `sample_index` of the rendered prompt `prompt_text`."""

    prompt_id: str
    sample_index: int
    prompt_text: str
    temperature: float
    top_k: int
    top_p: float
    adaptive: float = 0.0  # adaptive-temperature strength (sampling/adaptive.py), 0 = off


class PromptTooLongError(ValueError):
    """A prompt leaves no room for a new token in the model's context."""


def end_of_sequence_ids(loaded_model) -> tuple[int, ...]:
    """The checkpoint's eos ids plus the chat template's end-of-turn token, if it is one token."""
    ids = list(loaded_model.eos_token_ids)
    template = loaded_model.chat_template
    if template is not None:
        end_id = loaded_model.tokenizer.token_to_id(template.end_of_turn_text)
        if end_id is not None:
            ids.append(end_id)
    return tuple(dict.fromkeys(int(i) for i in ids))


def _id_array(ids: Sequence[int]) -> np.ndarray:
    """int32 ids padded with -1 to a multiple of 8, so a few more or fewer ids reuse the program."""
    padded = np.full((-(-max(len(ids), 1) // 8) * 8,), -1, np.int32)
    padded[: len(ids)] = ids
    return padded


class Sampler:
    """Samples completions of rendered prompts; one compiled program per (batch size, bucket).

    `mesh` (default: the loaded model's) must hold only this process's devices: each process
    samples on its own (see `job`); `batch_size` must be a multiple of its data × fsdp size.
    """

    def __init__(
        self,
        loaded_model,
        *,
        max_new_tokens: int,
        batch_size: int,
        seed: int,
        mesh: jax.sharding.Mesh | None = None,
        stop_token_ids: Sequence[int] = (),
        stop_strings: Sequence[str] = (),
    ):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {seed}")
        self.tokenizer = loaded_model.tokenizer
        self.context = loaded_model.config.max_position_embeddings
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, seed
        self.stop_strings = tuple(stop_strings)
        self.eos_ids = end_of_sequence_ids(loaded_model)
        self._eos_ids = _id_array(self.eos_ids)
        self._stop_ids = _id_array([int(i) for i in stop_token_ids if int(i) not in self.eos_ids])
        self.buckets = length_buckets(self.context)
        self.programs = SamplingPrograms(loaded_model.model, mesh or loaded_model.mesh, batch_size, max_new_tokens)

    def prompt_token_ids(self, prompt_text: str) -> list[int]:
        """The prompt as the model sees it (the rendered template already holds any BOS)."""
        return self.tokenizer.encode(prompt_text)

    def fits(self, num_prompt_tokens: int) -> bool:
        """Whether a prompt this long leaves room for at least one new token."""
        return 0 < num_prompt_tokens < self.context

    def generate(self, requests: Sequence[SampleRequest], progress: bool = True) -> list[Completion]:
        """A completion for every request, in request order."""
        completions: list[Completion] = [None] * len(requests)  # type: ignore[list-item]
        for index, completion in self._indexed_stream(requests, progress):
            completions[index] = completion
        return completions

    def stream(self, requests: Sequence[SampleRequest], progress: bool = True) -> Iterator[Completion]:
        """Completions batch by batch as they finish (longest prompts first).

        Raises PromptTooLongError before any decoding if a prompt does not fit the context.
        """
        for _, completion in self._indexed_stream(requests, progress):
            yield completion

    def _indexed_stream(self, requests: Sequence[SampleRequest], progress: bool) -> Iterator[tuple[int, Completion]]:
        """(request index, completion) pairs. Requests may share a (prompt id, sample index) pair
        (and so their random numbers) only if their sampling parameters differ, e.g. the points
        of a temperature grid, which then fill batches together."""
        identities = [(r.prompt_id, r.sample_index, r.temperature, r.top_k, r.top_p, r.adaptive) for r in requests]
        if len(set(identities)) != len(identities):
            raise ValueError("requests repeat a (prompt_id, sample_index) pair with the same temperature, top-k, "
                             "top-p and adaptive strength; each sample must be unique")
        rows = sorted(enumerate(self.row(request) for request in requests), key=lambda item: -len(item[1].prompt_ids))
        bar = tqdm(total=len(rows), unit="sample", disable=not progress, desc="sampling")
        start, generated = time.perf_counter(), 0
        try:
            for offset in range(0, len(rows), self.batch_size):
                batch = rows[offset : offset + self.batch_size]
                completions = self._run([row for _, row in batch])
                generated += sum(len(c.token_ids) for c in completions)
                bar.update(len(completions))
                bar.set_postfix(tok_per_s=f"{generated / (time.perf_counter() - start):.1f}")
                yield from zip((index for index, _ in batch), completions)
        finally:
            bar.close()

    def row(self, request: SampleRequest) -> BatchRow:
        """The request as a batch row: prompt tokens and this row's token budget."""
        prompt_ids = self.prompt_token_ids(request.prompt_text)
        if not self.fits(len(prompt_ids)):
            raise PromptTooLongError(
                f"prompt {request.prompt_id!r} has {len(prompt_ids)} tokens; the model's context holds "
                f"{self.context}, so at most {self.context - 1} prompt tokens leave room to generate"
            )
        budget = min(self.max_new_tokens, self.context - len(prompt_ids))
        return BatchRow(request.prompt_id, request.sample_index, prompt_ids, float(request.temperature),
                        int(request.top_k), float(request.top_p), budget, float(request.adaptive))

    def host_batch(self, rows: Sequence[BatchRow]) -> HostBatch:
        """Up to `batch_size` rows padded to their length bucket, as the programs take them."""
        bucket = bucket_for(max(len(row.prompt_ids) for row in rows), self.buckets)
        return build_batch(rows, self.batch_size, bucket, self.max_new_tokens)

    def _run(self, rows: Sequence[BatchRow]) -> list[Completion]:
        out = self.programs.run(self.host_batch(rows), self.seed, self._eos_ids, self._stop_ids)
        return [
            make_completion(
                self.tokenizer, row.prompt_id, row.sample_index, len(row.prompt_ids), out.tokens[r],
                out.model_logprobs[r], out.sampling_logprobs[r], int(out.num_tokens[r]), int(out.finish[r]),
                self.stop_strings,
            )
            for r, row in enumerate(rows)
        ]
