"""Generated tokens/s: ssd-jax's Sampler vs HF transformers `generate`, same weights, same run.

Both decode SmolLM2-135M-Instruct (the built-in GGUF, dequantised to float32; transformers
loads an HF export of the very same tensors) on the CPU, from the same chat prompt repeated
`batch` times, for exactly `--new_tokens` tokens (end of sequence disabled), greedy and sampled
(T 0.8, top-k 20, top-p 0.8). For each batch size ssd-jax runs first (one warm-up run compiles
its programs), then transformers (one short warm-up), so load changes on a shared machine hit
both alike; the ratio is what to read. Both time prefill + decode from token ids.

The bandwidth column: bytes one ssd-jax decode step reads (all weights + the whole allocated
KV cache, which every step attends over) ÷ the measured decode step time, as a fraction of the
machine's copy bandwidth (NumPy copy of 256 MiB, read + write bytes; the best of a measurement
before and one after the runs).

    python benchmarks/sampler.py [--batch_sizes 1,8,32] [--new_tokens 256] [--modes greedy,sampled]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import jax
import numpy as np
import torch
import transformers

import ssd_jax
from ssd_jax.data.offline_problems import load_offline_problems
from ssd_jax.data.prompt_format import problem_messages
from ssd_jax.sampling import Sampler, SampleRequest

MODES = {"greedy": (0.0, 0, 1.0), "sampled": (0.8, 20, 0.8)}


def copy_bandwidth(nbytes: int = 256 << 20) -> float:
    """Bytes per second moved (read + write) by the best of 5 NumPy copies."""
    source = np.ones(nbytes // 4, np.float32)
    target = np.empty_like(source)
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(5))
    return 2 * nbytes / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ssd_jax_run(loaded, prompt: str, batch: int, new_tokens: int, mode: str) -> tuple[float, float, int]:
    """(tokens/s of prefill + decode, seconds per decode step, bytes read per decode step).

    A first `generate` compiles the programs; the timed run calls the same prefill and decode
    programs directly (the prompts are already token ids, as they are for transformers)."""
    sampler = Sampler(loaded, max_new_tokens=new_tokens, batch_size=batch, seed=0)
    temperature, top_k, top_p = MODES[mode]
    requests = [SampleRequest(f"bench-{i}", 0, prompt, temperature, top_k, top_p) for i in range(batch)]
    sampler.generate(requests, progress=False)  # compiles
    host = sampler.host_batch([sampler.row(r) for r in requests])
    start = time.perf_counter()
    cache, state = jax.block_until_ready(sampler.programs.prefill(host))
    prefill_seconds = time.perf_counter() - start
    cache_bytes = sum(x.nbytes for x in jax.tree.leaves(cache))
    decode = lambda: sampler.programs.decode(cache, state, host, 0, sampler._eos_ids, sampler._stop_ids)  # noqa: E731
    decode_seconds = _timed(decode)
    weight_bytes = sum(x.nbytes for x in jax.tree.leaves(sampler.programs.params))
    return batch * new_tokens / (prefill_seconds + decode_seconds), decode_seconds / new_tokens, weight_bytes + cache_bytes


def transformers_run(model, prompt_ids: list[int], batch: int, new_tokens: int, mode: str) -> float:
    temperature, top_k, top_p = MODES[mode]
    inputs = torch.tensor([prompt_ids] * batch)
    options = {"attention_mask": torch.ones_like(inputs), "min_new_tokens": new_tokens,
               "max_new_tokens": new_tokens, "pad_token_id": 0}
    if mode == "greedy":
        options.update(do_sample=False)
    else:
        options.update(do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p)
    with torch.inference_mode():
        model.generate(inputs, **{**options, "min_new_tokens": 4, "max_new_tokens": 4})
        start = time.perf_counter()
        out = model.generate(inputs, **options)
        seconds = time.perf_counter() - start
    assert out.shape[1] - inputs.shape[1] == new_tokens
    return batch * new_tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--modes", default="greedy,sampled")
    args = parser.parse_args()

    loaded = ssd_jax.load_model("smollm2-135m-instruct", dtype="float32")
    messages = problem_messages(load_offline_problems()[0])
    prompt = loaded.chat_template.render(messages, add_generation_prompt=True)
    prompt_ids = loaded.tokenizer.encode(prompt)
    no_eos = dataclasses.replace(loaded, eos_token_ids=(), chat_template=None)
    with tempfile.TemporaryDirectory() as hf_dir:
        loaded.export_hf(hf_dir)
        hf_model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    bandwidth = copy_bandwidth()
    print(f"SmolLM2-135M float32, prompt {len(prompt_ids)} tokens, {args.new_tokens} new tokens, "
          f"{os.cpu_count()} CPUs, jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for mode in args.modes.split(","):
            ours, step, step_bytes = ssd_jax_run(no_eos, prompt, batch, args.new_tokens, mode)
            theirs = transformers_run(hf_model, prompt_ids, batch, args.new_tokens, mode)
            rows.append((batch, mode, ours, theirs, step, step_bytes))
            print(f"batch {batch} {mode}: ssd-jax {ours:.1f} tok/s, transformers {theirs:.1f} tok/s", flush=True)
    bandwidth = max(bandwidth, copy_bandwidth())  # a busy moment at the start would inflate `bw frac`
    print(f"copy bandwidth (best of before and after the runs): {bandwidth / 1e9:.1f} GB/s\n")
    header = (f"{'batch':>5} {'mode':>8} {'ssd-jax tok/s':>14} {'transformers tok/s':>19} {'ratio':>6} "
              f"{'step ms':>8} {'MB/step':>8} {'bw frac':>8}")
    print(header)
    print("-" * len(header))
    for batch, mode, ours, theirs, step, step_bytes in rows:
        print(f"{batch:>5} {mode:>8} {ours:>14.1f} {theirs:>19.1f} {ours / theirs:>6.2f} {step * 1e3:>8.1f} "
              f"{step_bytes / 1e6:>8.0f} {step_bytes / step / bandwidth:>8.2f}")


if __name__ == "__main__":
    main()
