"""The host side of continuous batching: one run's waiting queue, slots and page allocators.

`Run` admits samples into free slots while their pages can be reserved, prefills each prompt
once per cache replica in chunks between decode steps, decodes every live slot one token per
step, and frees a finished sample's slot and pages at once (see `sampler` for the behaviour a
caller sees). The device work goes through a `PagedEngine`; this module only decides what it
runs next and keeps the page accounting.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ssd_jax.models.kv_cache import NULL_PAGE
from ssd_jax.sampling.completions import FINISH_EOS, FINISH_LENGTH, FINISH_STOP, Completion, make_completion
from ssd_jax.sampling.engine import PagedEngine, idle_slots
from ssd_jax.sampling.pages import PageAllocator, own_pages, prefix_pages, shared_pages

if TYPE_CHECKING:
    from ssd_jax.sampling.sampler import Sampler, SampleRequest

STOP_WINDOW = 16  # Tokens whose text is searched for a stop string after each step.


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


@dataclasses.dataclass
class Prefix:
    """A prompt's first `L - 1` tokens in one replica's pages, shared by its samples there."""

    pages: list[int]
    filled: int = 0  # tokens prefilled so far
    users: int = 0  # admitted samples of the prompt in this replica that have not finished


@dataclasses.dataclass
class Prompt:
    """A prompt's tokens, its samples not yet admitted, and its prefilled prefix per replica."""

    token_ids: list[int]
    waiting: int = 0  # samples not admitted yet
    prefixes: dict[int, Prefix] = dataclasses.field(default_factory=dict)  # by replica

    @property
    def prefix_len(self) -> int:
        return len(self.token_ids) - 1


@dataclasses.dataclass
class Sample:
    """One requested sample: where it runs (replica, pages) and what it has drawn so far."""

    index: int  # in the request list
    request: SampleRequest
    prompt: Prompt
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


def table_width(pages: int) -> int:
    """The page-table width for `pages` live pages: a multiple of `MIN_TABLE_WIDTH` and of a
    quarter of the power of two just below `pages`, so a table is at most ~25 % wider than the
    live pages (the gather path reads all of it) while a run's widths stay few (four per doubling).
    """
    if pages <= MIN_TABLE_WIDTH:
        return MIN_TABLE_WIDTH
    step = max(MIN_TABLE_WIDTH, (1 << ((pages - 1).bit_length() - 1)) // 4)
    return -(-pages // step) * step


def chunk_size(tokens: int, largest: int) -> int:
    """The prefill chunk for `tokens` prompt tokens still to prefill: the next power of two, at least
    `MIN_PREFILL_CHUNK` and at most `largest` (a prompt shorter than a whole chunk is not padded to it)."""
    return min(largest, max(MIN_PREFILL_CHUNK, 1 << max(tokens - 1, 0).bit_length()))


def needed_pages(sample: Sample, page_size: int) -> tuple[int, int]:
    """(prefix pages, own pages) of a sample."""
    length = len(sample.prompt.token_ids)
    return prefix_pages(length, page_size), own_pages(length, sample.budget, page_size)


class Run:
    """One run's host state: the waiting queue, the slots, the page allocators."""

    def __init__(self, sampler: Sampler, engine: PagedEngine, samples: list[Sample]):
        self.sampler, self.engine = sampler, engine
        self.queue = collections.deque(samples)
        self.slots: list[list[Sample | None]] = [[None] * sampler.slots for _ in range(sampler.replicas)]
        self.allocators = [PageAllocator(engine.num_pages) for _ in range(sampler.replicas)]
        self.stats = RunStats(pages=engine.num_pages - 1)
        self.copies: list[tuple[int, int, int]] = []  # pending copy-on-write (replica, src, dst)
        self.end_ids = set(sampler.eos_ids)
        self.stop_ids = set(sampler.stop_ids)
        # With an attention that reads only live pages, every program takes the run's widest tables.
        self.fixed_widths = None
        if engine.reads_only_live_pages:
            lengths = [len(sample.prompt.token_ids) for sample in samples]
            tables = [shared_pages(length, sampler.page_size) + needed_pages(sample, sampler.page_size)[1]
                      for length, sample in zip(lengths, samples)]
            self.fixed_widths = (table_width(max(prefix_pages(length, sampler.page_size) for length in lengths)),
                                 table_width(max(tables)))

    def steps(self) -> Iterator[tuple[Sample, Completion]]:
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

    def _replica_for(self, sample: Sample) -> int | None:
        prefix, own = needed_pages(sample, self.sampler.page_size)
        candidates = sorted(range(self.sampler.replicas), key=lambda r: r not in sample.prompt.prefixes)
        for replica in candidates:
            need = own + (0 if replica in sample.prompt.prefixes else prefix)
            if None in self.slots[replica] and self.allocators[replica].free >= need:
                return replica
        return None

    def _place(self, sample: Sample, replica: int) -> None:
        page_size, allocator = self.sampler.page_size, self.allocators[replica]
        prompt = sample.prompt
        length = len(prompt.token_ids)
        prefix = prompt.prefixes.get(replica)
        if prefix is None:
            prefix = prompt.prefixes[replica] = Prefix(allocator.allocate(prefix_pages(length, page_size)))
            self.stats.prompt_prefills += 1
        prefix.users += 1
        prompt.waiting -= 1
        sample.replica = replica
        sample.pages = allocator.allocate(own_pages(length, sample.budget, page_size))
        sample.table = prefix.pages[: shared_pages(length, page_size)] + sample.pages
        self.slots[replica][self.slots[replica].index(None)] = sample
        if prefix.filled == prompt.prefix_len:
            self._start(sample, prefix)

    def _start(self, sample: Sample, prefix: Prefix) -> None:
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
            chunk = chunk_size(max(w[0].prefix_len - w[1].filled for w in work if w), self.sampler.prefill_chunk)
            width = self.fixed_widths[0] if self.fixed_widths else table_width(max(len(w[1].pages) for w in work if w))
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

    def _next_prefix(self, replica: int) -> tuple[Prompt, Prefix] | None:
        for sample in self.slots[replica]:
            if sample is not None and not sample.live:
                prefix = sample.prompt.prefixes[replica]
                if prefix.filled < sample.prompt.prefix_len:
                    return sample.prompt, prefix
        return None

    # -- decode ---------------------------------------------------------------------------------
    def _decode(self) -> Iterator[tuple[Sample, Completion]]:
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
                 else table_width(max(-(-length // page_size) for length in kv_lens.values())))
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

    def _finish(self, sample: Sample, token: int) -> int | None:
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

    def _complete(self, sample: Sample, finish: int, replica: int, slot: int) -> Completion:
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
