"""`Sampler`: continuous batching over a paged KV cache, reproducible per sample.

    sampler = Sampler(loaded, max_new_tokens=1024, batch_size=32, seed=0)
    completions = sampler.generate([SampleRequest("p1", 0, prompt_text, 0.8, 20, 0.95), ...])

`batch_size` decode slots each hold one live sample at its own position. Every step decodes
one token for every slot; a sample that finishes (end-of-sequence or stop token, stop string,
token budget: `max_new_tokens`, or prompt + response reaching `max_total_tokens` when given)
frees its slot and pages at once, and the next waiting sample takes the slot. Its prompt is
prefilled in chunks of at most `prefill_chunk` tokens between decode steps, so a long prompt never
stalls the live slots for long.

* Memory: a fixed pool of `kv_cache_pages` pages of `page_size` tokens per cache replica (or as
  many as fit in `kv_cache_gb` per device; neither: enough for every slot at the run's longest
  sample). A sample is admitted only once all the pages it may need are reserved (`pages`), so
  a run never runs out of pages mid-sample; one that cannot fit even an empty cache is refused
  before anything runs.
* Prefix sharing: the samples of one prompt (n samples × a temperature grid) share its
  prefilled pages: one prefill per prompt and cache replica, and copy-on-write of the page a
  sample first writes.
* Reproducible: a sample's token `t` is drawn with a key from (seed, prompt id, sample index,
  `t`) (`keys`), so a completion does not depend on its slot, the step it started at or its
  neighbours, up to float rounding (a greedy token can flip only at a near-tie of the top two
  logits, a sampled one only with its uniform within ~1e-7 of a cumulative boundary).
* Programs: one decode program per page-table width (`scheduler.table_width`: multiples of
  `scheduler.MIN_TABLE_WIDTH`, four per doubling, up to the longest sample's pages; on TPU, whose
  kernel reads only live pages, the longest sample's width alone), one prefill program per
  (chunk, page-table width) with chunks of powers of two from `scheduler.MIN_PREFILL_CHUNK` up
  to `prefill_chunk`, one copy program; sampling parameters (adaptive-temperature strength
  included) are per-slot arrays, so a temperature grid never recompiles.

Stop strings are matched on the host as tokens arrive (over the last `scheduler.STOP_WINDOW`
tokens' text) and end the sample early; `completions` cuts the text at the earliest stop string.
The host loop (admission, prefill scheduling, decoding, page accounting) is `scheduler.Run`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence

import jax
from tqdm import tqdm

from ssd_jax.errors import ConfigError
from ssd_jax.sampling.completions import Completion
from ssd_jax.sampling.engine import PagedEngine, cache_replicas
from ssd_jax.sampling.keys import prompt_id_words
from ssd_jax.sampling.pages import default_pool_pages, pages_in_gib
from ssd_jax.sampling.scheduler import Prompt, Run, RunStats, Sample, needed_pages


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


class Sampler:
    """Samples completions of rendered prompts by continuous batching (see the module docstring).

    `mesh` (default: the loaded model's) must hold only this process's devices: each process
    samples on its own; its data × fsdp size is the number of cache replicas, each with its own
    pages and `batch_size / replicas` slots, so `batch_size` must be a multiple of it.
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
        page_size: int = 16,
        kv_cache_pages: int = 0,
        kv_cache_gb: float = 0.0,
        prefill_chunk: int = 256,
        max_total_tokens: int | None = None,
    ):
        for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size),
                            ("page_size", page_size), ("prefill_chunk", prefill_chunk)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if kv_cache_pages < 0 or kv_cache_gb < 0:
            raise ConfigError(f"kv_cache_pages and kv_cache_gb must be >= 0, got {kv_cache_pages}, {kv_cache_gb}")
        if not 0 <= seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), got {seed}")
        self.mesh = mesh or loaded_model.mesh
        replicas = cache_replicas(self.mesh)
        if batch_size % replicas:
            raise ConfigError(f"batch_size {batch_size} must be a multiple of the mesh's data × fsdp size ({replicas})")
        self.model = loaded_model.model
        self.tokenizer = loaded_model.tokenizer
        # Tokens per sequence, prompt + response: the model's context, or `max_total_tokens` if smaller.
        self.context = min(loaded_model.config.max_position_embeddings, max_total_tokens or sys.maxsize)
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, seed
        self.replicas, self.slots = replicas, batch_size // replicas
        self.page_size, self.prefill_chunk = page_size, prefill_chunk
        self.kv_cache_pages = kv_cache_pages or pages_in_gib(self.model.config, self.mesh.shape["model"], page_size,
                                                             kv_cache_gb)
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.eos_ids = end_of_sequence_ids(loaded_model)
        self.stop_ids = tuple(int(i) for i in stop_token_ids if int(i) not in self.eos_ids)
        self.engine: PagedEngine | None = None
        self.last_run = RunStats()

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
        """Completions as they finish. Raises PromptTooLongError or ConfigError before any
        decoding if a prompt does not fit the context or a sample cannot fit the page budget."""
        for _, completion in self._indexed_stream(requests, progress):
            yield completion

    def _samples(self, requests: Sequence[SampleRequest]) -> list[Sample]:
        """The requests as samples, grouped by prompt (first appearance order), checked up front."""
        identities = [(r.prompt_id, r.sample_index, r.temperature, r.top_k, r.top_p, r.adaptive) for r in requests]
        if len(set(identities)) != len(identities):
            raise ValueError("requests repeat a (prompt_id, sample_index) pair with the same temperature, top-k, "
                             "top-p and adaptive strength; each sample must be unique")
        prompts: dict[tuple[str, str], Prompt] = {}
        samples = []
        for index, request in enumerate(requests):
            key = (request.prompt_id, request.prompt_text)
            if key not in prompts:
                token_ids = self.prompt_token_ids(request.prompt_text)
                if not self.fits(len(token_ids)):
                    raise PromptTooLongError(
                        f"prompt {request.prompt_id!r} has {len(token_ids)} tokens; the context (the model's, or "
                        f"max_total_tokens if smaller) holds {self.context}, so at most {self.context - 1} prompt tokens leave room to generate")
                prompts[key] = Prompt(token_ids)
            prompt = prompts[key]
            prompt.waiting += 1
            budget = min(self.max_new_tokens, self.context - len(prompt.token_ids))
            samples.append(Sample(index, request, prompt, budget, prompt_id_words([request.prompt_id])[0]))
        order = {id(p): i for i, p in enumerate(prompts.values())}
        return sorted(samples, key=lambda s: order[id(s.prompt)])

    def _engine_for(self, samples: Sequence[Sample]) -> PagedEngine:
        """The engine with this run's page pool (kept while the pool size stays the same)."""
        largest = max(sum(needed_pages(s, self.page_size)) for s in samples)
        pages = self.kv_cache_pages or default_pool_pages(self.slots, largest, self.context, self.page_size)
        if not self.kv_cache_pages and self.engine is not None and self.engine.num_pages - 1 >= pages:
            pages = self.engine.num_pages - 1  # a default pool only grows: a smaller run reuses its programs
        for sample in samples:
            need = sum(needed_pages(sample, self.page_size))
            if need > pages:
                raise ConfigError(
                    f"sample {sample.request.sample_index} of prompt {sample.request.prompt_id!r} needs {need} KV "
                    f"cache pages ({len(sample.prompt.token_ids)} prompt + {sample.budget} new tokens at "
                    f"{self.page_size} tokens a page) but the cache holds {pages}; raise kv_cache_pages (or "
                    "kv_cache_gb), or lower max_new_tokens")
        if self.engine is None or self.engine.num_pages != pages + 1:
            self.engine = None  # free the old pool first
            self.engine = PagedEngine(self.model, self.mesh, num_pages=pages + 1, page_size=self.page_size)
        return self.engine

    def _indexed_stream(self, requests: Sequence[SampleRequest], progress: bool) -> Iterator[tuple[int, Completion]]:
        if not requests:
            return
        samples = self._samples(requests)
        run = Run(self, self._engine_for(samples), samples)
        bar = tqdm(total=len(samples), unit="sample", disable=not progress, desc="sampling")
        start = time.perf_counter()
        try:
            for sample, completion in run.steps():
                bar.update(1)
                stats = run.stats
                bar.set_postfix(tok_per_s=f"{stats.tokens / (time.perf_counter() - start):.1f}",
                                live=f"{stats.live_fraction:.0%}", refresh=False)
                yield sample.index, completion
        finally:
            bar.close()
            self.last_run = run.stats


