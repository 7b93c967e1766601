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
* Programs: one decode program per page-table width (powers of two from `MIN_TABLE_WIDTH` up to
  the longest sample's pages; on TPU, whose kernel reads only live pages, the longest sample's
  width alone), one prefill program per (chunk, page-table width) with chunks of
  powers of two from `MIN_PREFILL_CHUNK` up to `prefill_chunk`, one copy program; sampling
  parameters (adaptive-temperature strength included) are per-slot arrays, so a temperature grid
  never recompiles.

Stop strings are matched on the host as tokens arrive (over the last `STOP_WINDOW` tokens'
text) and end the sample early; `completions` cuts the text at the earliest stop string.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from tqdm import tqdm

from ssd_jax.errors import ConfigError
from ssd_jax.models.kv_cache import NULL_PAGE
from ssd_jax.sampling.completions import FINISH_EOS, FINISH_LENGTH, FINISH_STOP, Completion, make_completion
from ssd_jax.sampling.engine import PagedEngine, SlotInputs, cache_replicas, idle_slots
from ssd_jax.sampling.keys import prompt_id_words
from ssd_jax.sampling.pages import (
    PageAllocator, default_pool_pages, own_pages, pages_in_gib, prefix_pages, shared_pages,
)

STOP_WINDOW = 16  # Tokens whose text is searched for a stop string after each step.


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


@dataclasses.dataclass
class RunStats:
    """What the last `generate` / `stream` did, for progress, tests and benchmarks."""

    pages: int = 0  # usable pages per cache replica (the budget)
    peak_pages: int = 0  # most pages held at once in any replica (the allocator's high-water mark)
    prompt_prefills: int = 0  # prompt prefixes prefilled (once per prompt and replica)
    prefill_chunks: int = 0
    decode_steps: int = 0
    live_slot_steps: int = 0  # sum over decode steps of the slots holding a live sample
    slot_steps: int = 0  # decode steps × slots
    tokens: int = 0  # tokens drawn

    @property
    def live_fraction(self) -> float:
        return self.live_slot_steps / max(self.slot_steps, 1)


def end_of_sequence_ids(loaded_model) -> tuple[int, ...]:
    """The checkpoint's eos ids plus the chat template's end-of-turn token, if it is one token."""
    ids = list(loaded_model.eos_token_ids)
    template = loaded_model.chat_template
    if template is not None:
        end_id = loaded_model.tokenizer.token_to_id(template.end_of_turn_text)
        if end_id is not None:
            ids.append(end_id)
    return tuple(dict.fromkeys(int(i) for i in ids))


@dataclasses.dataclass
class _Prefix:
    """A prompt's first `L - 1` tokens in one replica's pages, shared by its samples there."""

    pages: list[int]
    filled: int = 0  # tokens prefilled so far
    users: int = 0  # admitted samples of the prompt in this replica that have not finished


@dataclasses.dataclass
class _Prompt:
    token_ids: list[int]
    waiting: int = 0  # samples not admitted yet
    prefixes: dict[int, _Prefix] = dataclasses.field(default_factory=dict)  # by replica

    @property
    def prefix_len(self) -> int:
        return len(self.token_ids) - 1


@dataclasses.dataclass
class _Sample:
    index: int  # in the request list
    request: SampleRequest
    prompt: _Prompt
    budget: int
    id_words: np.ndarray  # uint32 [2]: the prompt id's hash (keys.prompt_id_words)
    replica: int = -1
    pages: list[int] = dataclasses.field(default_factory=list)  # owned
    table: list[int] = dataclasses.field(default_factory=list)  # the whole page table
    live: bool = False  # prefix ready, decoding
    tokens: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)
    sampling_logprobs: list[float] = dataclasses.field(default_factory=list)


MIN_TABLE_WIDTH = 8  # Fewest pages a page table passed to a program holds (fewer programs for short runs).
MIN_PREFILL_CHUNK = 32  # Fewest prompt tokens a prefill program takes.


def _width(pages: int) -> int:
    """The page-table width for `pages` live pages: the next power of two, at least `MIN_TABLE_WIDTH`."""
    return max(MIN_TABLE_WIDTH, 1 << max(pages - 1, 0).bit_length())


def _chunk(tokens: int, largest: int) -> int:
    """The prefill chunk for `tokens` prompt tokens still to prefill: the next power of two, at least
    `MIN_PREFILL_CHUNK` and at most `largest` (a prompt shorter than a whole chunk is not padded to it)."""
    return min(largest, max(MIN_PREFILL_CHUNK, 1 << max(tokens - 1, 0).bit_length()))


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

    def _samples(self, requests: Sequence[SampleRequest]) -> list[_Sample]:
        """The requests as samples, grouped by prompt (first appearance order), checked up front."""
        identities = [(r.prompt_id, r.sample_index, r.temperature, r.top_k, r.top_p, r.adaptive) for r in requests]
        if len(set(identities)) != len(identities):
            raise ValueError("requests repeat a (prompt_id, sample_index) pair with the same temperature, top-k, "
                             "top-p and adaptive strength; each sample must be unique")
        prompts: dict[tuple[str, str], _Prompt] = {}
        samples = []
        for index, request in enumerate(requests):
            key = (request.prompt_id, request.prompt_text)
            if key not in prompts:
                token_ids = self.prompt_token_ids(request.prompt_text)
                if not self.fits(len(token_ids)):
                    raise PromptTooLongError(
                        f"prompt {request.prompt_id!r} has {len(token_ids)} tokens; the context (the model's, or "
                        f"max_total_tokens if smaller) holds {self.context}, so at most {self.context - 1} prompt tokens leave room to generate")
                prompts[key] = _Prompt(token_ids)
            prompt = prompts[key]
            prompt.waiting += 1
            budget = min(self.max_new_tokens, self.context - len(prompt.token_ids))
            samples.append(_Sample(index, request, prompt, budget, prompt_id_words([request.prompt_id])[0]))
        order = {id(p): i for i, p in enumerate(prompts.values())}
        return sorted(samples, key=lambda s: order[id(s.prompt)])

    def _needed(self, sample: _Sample) -> tuple[int, int]:
        """(prefix pages, own pages) of a sample."""
        length = len(sample.prompt.token_ids)
        return prefix_pages(length, self.page_size), own_pages(length, sample.budget, self.page_size)

    def _engine_for(self, samples: Sequence[_Sample]) -> PagedEngine:
        """The engine with this run's page pool (kept while the pool size stays the same)."""
        largest = max(sum(self._needed(s)) for s in samples)
        pages = self.kv_cache_pages or default_pool_pages(self.slots, largest, self.context, self.page_size)
        if not self.kv_cache_pages and self.engine is not None and self.engine.num_pages - 1 >= pages:
            pages = self.engine.num_pages - 1  # a default pool only grows: a smaller run reuses its programs
        for sample in samples:
            need = sum(self._needed(sample))
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
        run = _Run(self, self._engine_for(samples), samples)
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


class _Run:
    """One run's host state: the waiting queue, the slots, the page allocators."""

    def __init__(self, sampler: Sampler, engine: PagedEngine, samples: list[_Sample]):
        self.sampler, self.engine = sampler, engine
        self.queue = collections.deque(samples)
        self.slots: list[list[_Sample | None]] = [[None] * sampler.slots for _ in range(sampler.replicas)]
        self.allocators = [PageAllocator(engine.num_pages) for _ in range(sampler.replicas)]
        self.stats = RunStats(pages=engine.num_pages - 1)
        self.copies: list[tuple[int, int, int]] = []  # pending copy-on-write (replica, src, dst)
        self.end_ids = set(sampler.eos_ids)
        self.stop_ids = set(sampler.stop_ids)
        # With an attention that reads only live pages, every program takes the run's widest tables.
        self.fixed_widths = None
        if engine.reads_only_live_pages:
            lengths = [len(sample.prompt.token_ids) for sample in samples]
            tables = [shared_pages(length, sampler.page_size) + sampler._needed(sample)[1]
                      for length, sample in zip(lengths, samples)]
            self.fixed_widths = (_width(max(prefix_pages(length, sampler.page_size) for length in lengths)),
                                 _width(max(tables)))

    def steps(self) -> Iterator[tuple[_Sample, Completion]]:
        """Admits, prefills and decodes until every sample is done, yielding each as it finishes."""
        chunks0, steps0 = self.engine.prefill_chunks, self.engine.decode_steps
        while self.queue or any(s is not None for row in self.slots for s in row):
            self._admit()
            self._prefill(until_live=not any(s is not None and s.live for row in self.slots for s in row))
            self._copy_pending()
            if any(s is not None and s.live for row in self.slots for s in row):
                yield from self._decode()
            elif not any(s is not None for row in self.slots for s in row):
                raise RuntimeError(f"no slot could take sample {self.queue[0].request!r} with every page free; "
                                   "the page accounting is broken")
            self.stats.peak_pages = max(a.peak for a in self.allocators)
            self.stats.prefill_chunks = self.engine.prefill_chunks - chunks0
            self.stats.decode_steps = self.engine.decode_steps - steps0

    # -- admission ------------------------------------------------------------------------------
    def _admit(self) -> None:
        """Moves waiting samples into free slots, first come first served, while pages allow."""
        while self.queue:
            sample = self.queue[0]
            replica = self._replica_for(sample)
            if replica is None:
                return
            self.queue.popleft()
            self._place(sample, replica)

    def _replica_for(self, sample: _Sample) -> int | None:
        prefix, own = self.sampler._needed(sample)
        candidates = sorted(range(self.sampler.replicas), key=lambda r: r not in sample.prompt.prefixes)
        for replica in candidates:
            need = own + (0 if replica in sample.prompt.prefixes else prefix)
            if None in self.slots[replica] and self.allocators[replica].free >= need:
                return replica
        return None

    def _place(self, sample: _Sample, replica: int) -> None:
        page_size, allocator = self.sampler.page_size, self.allocators[replica]
        prompt = sample.prompt
        length = len(prompt.token_ids)
        prefix = prompt.prefixes.get(replica)
        if prefix is None:
            prefix = prompt.prefixes[replica] = _Prefix(allocator.allocate(prefix_pages(length, page_size)))
            self.stats.prompt_prefills += 1
        prefix.users += 1
        prompt.waiting -= 1
        sample.replica = replica
        sample.pages = allocator.allocate(own_pages(length, sample.budget, page_size))
        sample.table = prefix.pages[: shared_pages(length, page_size)] + sample.pages
        self.slots[replica][self.slots[replica].index(None)] = sample
        if prefix.filled == prompt.prefix_len:
            self._start(sample, prefix)

    def _start(self, sample: _Sample, prefix: _Prefix) -> None:
        """The prefix is ready: copy its partly filled page (if any) into the sample's own, go live."""
        shared = shared_pages(len(sample.prompt.token_ids), self.sampler.page_size)
        if len(prefix.pages) > shared:
            self.copies.append((sample.replica, prefix.pages[shared], sample.pages[0]))
        sample.live = True

    def _copy_pending(self) -> None:
        while self.copies:
            src = np.full((self.sampler.replicas, self.sampler.slots), NULL_PAGE, np.int32)
            dst = src.copy()
            used = [0] * self.sampler.replicas
            rest = []
            for replica, source, target in self.copies:
                if used[replica] < self.sampler.slots:
                    src[replica, used[replica]], dst[replica, used[replica]] = source, target
                    used[replica] += 1
                else:
                    rest.append((replica, source, target))
            self.engine.copy_pages(src, dst)
            self.copies = rest

    # -- prefill --------------------------------------------------------------------------------
    def _prefill(self, until_live: bool) -> None:
        """One prefill chunk per replica that has a prompt waiting for it (more while no slot is live)."""
        while True:
            work = [self._next_prefix(replica) for replica in range(self.sampler.replicas)]
            if not any(work):
                return
            chunk = _chunk(max(w[0].prefix_len - w[1].filled for w in work if w), self.sampler.prefill_chunk)
            width = self.fixed_widths[0] if self.fixed_widths else _width(max(len(w[1].pages) for w in work if w))
            tokens = np.zeros((self.sampler.replicas, chunk), np.int32)
            kv_len, q_len = np.zeros((self.sampler.replicas,), np.int32), np.zeros((self.sampler.replicas,), np.int32)
            table = np.full((self.sampler.replicas, width), NULL_PAGE, np.int32)
            for replica, item in enumerate(work):
                if item is None:
                    continue
                prompt, prefix = item
                piece = prompt.token_ids[prefix.filled : min(prefix.filled + chunk, prompt.prefix_len)]
                tokens[replica, : len(piece)] = piece
                kv_len[replica], q_len[replica] = prefix.filled + len(piece), len(piece)
                table[replica, : len(prefix.pages)] = prefix.pages
            self.engine.prefill(tokens, kv_len, q_len, table)
            for replica, item in enumerate(work):
                if item is not None:
                    item[1].filled = int(kv_len[replica])
                    if item[1].filled == item[0].prefix_len:
                        for sample in self.slots[replica]:
                            if sample is not None and sample.prompt is item[0]:
                                self._start(sample, item[1])
            if not until_live or any(s is not None and s.live for row in self.slots for s in row):
                return

    def _next_prefix(self, replica: int) -> tuple[_Prompt, _Prefix] | None:
        for sample in self.slots[replica]:
            if sample is not None and not sample.live:
                prefix = sample.prompt.prefixes[replica]
                if prefix.filled < sample.prompt.prefix_len:
                    return sample.prompt, prefix
        return None

    # -- decode ---------------------------------------------------------------------------------
    def _decode(self) -> Iterator[tuple[_Sample, Completion]]:
        """One decode step of every live slot; finished samples leave their slots and pages."""
        sampler, page_size = self.sampler, self.sampler.page_size
        inputs = idle_slots(sampler.replicas, sampler.slots)
        live = [(r, s, sample) for r, row in enumerate(self.slots) for s, sample in enumerate(row)
                if sample is not None and sample.live]
        kv_lens = {}
        for r, s, sample in live:
            length = len(sample.prompt.token_ids) + len(sample.tokens)
            kv_lens[(r, s)] = length
            request = sample.request
            inputs.token[r, s] = sample.tokens[-1] if sample.tokens else sample.prompt.token_ids[-1]
            inputs.kv_len[r, s] = length
            inputs.temperature[r, s], inputs.top_k[r, s], inputs.top_p[r, s], inputs.adaptive[r, s] = (
                request.temperature, request.top_k, request.top_p, request.adaptive)
            inputs.id_words[r, s] = sample.id_words
            inputs.sample_index[r, s] = request.sample_index
            inputs.drawn[r, s] = len(sample.tokens)
        width = (self.fixed_widths[1] if self.fixed_widths
                 else _width(max(-(-length // page_size) for length in kv_lens.values())))
        table = np.full((sampler.replicas, sampler.slots, width), NULL_PAGE, np.int32)
        for r, s, sample in live:
            row = sample.table[:width]
            table[r, s, : len(row)] = row
        choice = self.engine.decode(inputs, table, sampler.seed)
        self.stats.live_slot_steps += len(live)
        self.stats.slot_steps += sampler.batch_size
        self.stats.tokens += len(live)
        for r, s, sample in live:
            token = int(choice.tokens[r, s])
            sample.tokens.append(token)
            sample.logprobs.append(float(choice.model_logprobs[r, s]))
            sample.sampling_logprobs.append(float(choice.sampling_logprobs[r, s]))
            finish = self._finish(sample, token)
            if finish is not None:
                yield sample, self._complete(sample, finish, r, s)

    def _finish(self, sample: _Sample, token: int) -> int | None:
        """The finish code if `token` ends the sample (a stop string counts as length: the
        completion finds it again and cuts the text there), else None."""
        if token in self.end_ids:
            return FINISH_EOS
        if token in self.stop_ids:
            return FINISH_STOP
        if len(sample.tokens) >= sample.budget:
            return FINISH_LENGTH
        if self.sampler.stop_strings:
            tail = self.sampler.tokenizer.decode(sample.tokens[-STOP_WINDOW:])
            if any(stop in tail for stop in self.sampler.stop_strings):
                return FINISH_LENGTH
        return None

    def _complete(self, sample: _Sample, finish: int, replica: int, slot: int) -> Completion:
        sampler = self.sampler
        self.slots[replica][slot] = None
        allocator = self.allocators[replica]
        allocator.release(sample.pages)
        prompt = sample.prompt
        prefix = prompt.prefixes[replica]
        prefix.users -= 1
        if prompt.waiting == 0:
            for r, p in list(prompt.prefixes.items()):
                if p.users == 0:
                    self.allocators[r].release(p.pages)
                    del prompt.prefixes[r]
        request = sample.request
        return make_completion(
            sampler.tokenizer, request.prompt_id, request.sample_index, len(prompt.token_ids),
            np.asarray(sample.tokens), np.asarray(sample.logprobs, np.float32),
            np.asarray(sample.sampling_logprobs, np.float32), len(sample.tokens), finish, sampler.stop_strings,
        )
