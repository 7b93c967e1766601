"""Stage `sample` (SSD stage 1): prompts → chat-rendered prompts → N samples each → shards.

Fields read (configs/base.py documents them): `workdir`, `model`, `seed`, `dtype`,
`prompts.{source, path, limit, require_passed, system_message, chat_template_kwargs}`
and `sampling.{temperature, top_k, top_p, n_samples, max_new_tokens, max_total_tokens, batch_size,
stop_strings, stop_token_ids, page_size, kv_cache_pages, kv_cache_gb, prefill_chunk, model_parallel,
expert_parallel}`.
Records go to `<workdir>/samples/` (`data.records`), local or gs://. The outputs depend on
`FINGERPRINT` (less `EXECUTION_ONLY`); a half-finished stage resumed with other values of those
fields is refused (`ssd_jax.stages.common`). `param_dtype` is not among them: stage 1 stores the
weights in `dtype`, so training's master-weight dtype cannot change a sample.

* Resumable: the (prompt id, sample index) pairs already in the shard directory are skipped,
  and records are written a batch at a time, so a killed job loses at most the batches since
  its last complete chunk and a rerun writes exactly the missing records.
* Multi-process (a TPU pod): process `i` of `n` samples `prompts[i::n]` on its own devices
  (a process-local mesh; no collectives while decoding) and writes its own shard name.
* A prompt that leaves no room for a new token in the context (the model's, or
  `sampling.max_total_tokens` if smaller) is skipped, counted and logged; it is never truncated.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import jax
from absl import logging
from tqdm import tqdm

from ssd_jax.checkpoints.load import load_model
from ssd_jax.data.prompt_format import problem_messages
from ssd_jax.data.prompts import load_prompts
from ssd_jax.data.records import SampleRecord, ShardWriter, process_shard_name
from ssd_jax.errors import InputError
from ssd_jax.parallel import sampler_mesh
from ssd_jax.problems.types import Problem
from ssd_jax.reading import reading
from ssd_jax.sampling.completions import Completion
from ssd_jax.sampling.sampler import Sampler, SampleRequest
from ssd_jax.stages.common import flat_fields
from ssd_jax.workdir import Workdir

NAME = "sample"
# The config fields the samples depend on; batch size and devices per replica only change how fast.
FINGERPRINT = ("model", "seed", "dtype", "prompts", "sampling")
# Fields earlier versions fingerprinted that never changed the samples: ignored where a work
# directory recorded them, so its stage still resumes.
RETIRED = ("param_dtype",)
EXECUTION_ONLY = ("sampling.batch_size", "sampling.model_parallel", "sampling.expert_parallel", "sampling.page_size",
                  "sampling.kv_cache_pages", "sampling.kv_cache_gb", "sampling.prefill_chunk")


@dataclasses.dataclass(frozen=True)
class SamplingSummary:
    """What one process of a sampling job did."""

    shard_dir: str
    prompts: int  # this process's share of the prompt set
    too_long: int  # prompts skipped: no room for a new token in the model's context
    already_done: int  # samples found in the shard directory and skipped
    written: int  # samples written by this run
    completion_tokens: int


@dataclasses.dataclass(frozen=True)
class _Prompt:
    problem: Problem
    messages: list[dict[str, str]]
    text: str


def _load_problems(prompts: Mapping) -> list[Problem]:
    options = {"require_passed": bool(prompts.require_passed)} if prompts.source == "rstar-coder" else {}
    with reading("prompts.path", prompts.path, "fix the file, or point config.prompts.path at a good copy"):
        problems = load_prompts(prompts.source, prompts.path or None, limit=prompts.limit or None, **options)
    counts = collections.Counter(problem.id for problem in problems)
    repeated = sorted(pid for pid, n in counts.items() if n > 1)
    if repeated:
        raise InputError(f"prompt source {prompts.source!r} repeats problem ids {repeated[:5]}; ids must be unique")
    return problems


def process_local_mesh(model_parallel: int, expert_parallel: int = 1, section: str = "sampling") -> jax.sharding.Mesh:
    """This process's devices as a sampling mesh (`parallel.sampler_mesh`): `model_parallel` of them
    per model replica, `expert_parallel` splitting the experts, the rest split the batch.
    Sampling never spans hosts: each process decodes its own share with no collectives between hosts."""
    return sampler_mesh(jax.local_devices(), model_parallel, expert_parallel, section)


def _render(problems: list[Problem], loaded, sampler: Sampler, system_message: str,
            template_kwargs: Mapping[str, Any]) -> tuple[list[_Prompt], int]:
    """Chat-rendered prompts (`template_kwargs` passed to the template) that fit the context, and
    the number that did not."""
    if loaded.chat_template is None:
        raise InputError(f"model {loaded.ref!r} has no chat template; sampling renders prompts with it")
    fitting, too_long = [], 0
    for problem in problems:
        messages = problem_messages(problem, system_message or None)
        text = loaded.chat_template.render(messages, add_generation_prompt=True, **template_kwargs)
        length = len(sampler.prompt_token_ids(text))
        if sampler.fits(length):
            fitting.append(_Prompt(problem, messages, text))
        else:
            too_long += 1
            logging.warning("skipping prompt %r: %d tokens leave no room in the %d-token context",
                            problem.id, length, sampler.context)
    return fitting, too_long


def _record(config: Mapping, prompt: _Prompt, completion: Completion) -> SampleRecord:
    s = config.sampling
    return SampleRecord(
        prompt_id=completion.prompt_id, sample_index=completion.sample_index, messages=prompt.messages,
        prompt_text=prompt.text, completion=completion.text, prompt_tokens=completion.prompt_tokens,
        completion_tokens=len(completion.token_ids), finish_reason=completion.finish_reason,
        temperature=float(s.temperature), top_k=int(s.top_k), top_p=float(s.top_p), model=str(config.model),
        seed=int(config.seed), source=prompt.problem.source, completion_token_ids=completion.token_ids,
        process_index=jax.process_index(),
    )


def run(config: Mapping) -> SamplingSummary:
    """Samples this process's share of the prompts into `<workdir>/samples/`; see the module docstring."""
    s = config.sampling
    problems = _load_problems(config.prompts)[jax.process_index() :: jax.process_count()]
    # Weights in the compute dtype: the sampler computes in it, and float32 master weights (training's
    # `param_dtype`) held beside the sampler's copy would double the weights' share of each device.
    loaded = load_model(config.model, dtype=config.dtype, param_dtype=config.dtype,
                        mesh=process_local_mesh(int(s.model_parallel), int(s.expert_parallel)))
    sampler = Sampler(loaded, max_new_tokens=int(s.max_new_tokens), batch_size=int(s.batch_size),
                      seed=int(config.seed), stop_token_ids=tuple(s.stop_token_ids), stop_strings=tuple(s.stop_strings),
                      page_size=int(s.page_size), kv_cache_pages=int(s.kv_cache_pages),
                      kv_cache_gb=float(s.kv_cache_gb), prefill_chunk=int(s.prefill_chunk),
                      max_total_tokens=int(s.max_total_tokens) or None)
    prompts, too_long = _render(problems, loaded, sampler, config.prompts.system_message,
                                dict(config.prompts.chat_template_kwargs))
    if problems and not prompts:
        raise InputError(
            f"none of the {len(problems)} prompts fits the {sampler.context}-token context; "
            "check config.prompts, config.model and config.sampling.max_total_tokens"
        )
    directory = Workdir(config.workdir).samples
    with ShardWriter(directory, process_shard_name(jax.process_index()), chunk_size=sampler.batch_size) as writer:
        pending = {
            p.problem.id: [i for i in range(int(s.n_samples)) if not writer.is_done(p.problem.id, i)] for p in prompts
        }
        already_done = len(prompts) * int(s.n_samples) - sum(map(len, pending.values()))
        requests = [
            SampleRequest(p.problem.id, i, p.text, float(s.temperature), int(s.top_k), float(s.top_p))
            for p in prompts
            for i in pending[p.problem.id]
        ]
        written, tokens = _write_all(config, sampler, {p.problem.id: p for p in prompts}, requests, pending, writer)
    summary = SamplingSummary(str(directory), len(problems), too_long, already_done, written, tokens)
    logging.info("sampling done: %s", summary)
    print(f"[sample] process {jax.process_index()}: {summary.written} samples written ({summary.completion_tokens} "
          f"tokens), {summary.already_done} already done, {summary.too_long} prompts too long for the context")
    return summary


def _write_all(config, sampler, prompts_by_id, requests, pending, writer) -> tuple[int, int]:
    """Streams the requests through the sampler into the writer, with a per-prompt progress bar."""
    left = {pid: len(indices) for pid, indices in pending.items() if indices}
    bar = tqdm(total=len(left), unit="prompt", desc=f"sampling (process {jax.process_index()})")
    start, written, tokens = time.perf_counter(), 0, 0
    try:
        for completion in sampler.stream(requests, progress=False):
            writer.write(_record(config, prompts_by_id[completion.prompt_id], completion))
            written, tokens = written + 1, tokens + len(completion.token_ids)
            left[completion.prompt_id] -= 1
            if not left[completion.prompt_id]:
                bar.update(1)
            bar.set_postfix(samples=written, tok_per_s=f"{tokens / (time.perf_counter() - start):.1f}", refresh=False)
    finally:
        bar.close()
    return written, tokens


def fingerprint(config: Mapping) -> dict:
    """The config fields the samples depend on, as `dotted.name -> value`."""
    return flat_fields(config, FINGERPRINT, EXECUTION_ONLY)
