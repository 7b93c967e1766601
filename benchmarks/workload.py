"""The sampler on the real workload: ragged lengths, eos on. ssd-jax continuous batching vs
ssd-jax's former static-batch sampler vs HF transformers `generate`, same weights, same run.

SmolLM2-135M-Instruct in float32 on the CPU (the built-in GGUF; transformers loads an HF export
of the same tensors):

* greedy HumanEval: the first `--problems` HumanEval prompts (all 164 by default) in the model's
  chat template ("Complete the following Python function: ..."), at most 384 new tokens, eos on.
  transformers runs static batches of 16 sorted by prompt length; the static ssd-jax sampler
  (from the commit `--static_commit`, extracted with `git archive` and run in a
  subprocess, batch = `--slots`) sorts and batches the same way it always did.
* sampled stage 1: T 0.8 / top-k 20 / top-p 0.8, one sample of each of the first `--prompts`
  built-in offline prompts (235 by default), continuous batching vs transformers.

Useful tokens/s counts the completions' tokens (through eos); the live-slot share is the
fraction of decode slot-steps that held a live sample. Roofline: each continuous-batching
decode step must read the weights once plus its live KV pages; that over the measured copy
bandwidth (NumPy copy, read + write bytes) is the step's memory floor, and floor / step time is
its share of the memory roofline (median over steady steps: those with every slot live). Its
compute floor is the step's FLOPs (2 per weight per live slot, plus attention over the live KV)
over the measured jit matmul FLOP/s; the last column is the share of the larger of the two floors. The same
floor is printed for Qwen3-4B in bf16 on a v5e and a v5p chip (HBM bandwidth from Google's
spec sheets), for the same live KV per step scaled to that model's KV bytes per token.

    python benchmarks/workload.py [--problems 164] [--prompts 235] [--slots 32] [--skip static,transformers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

GREEDY, SAMPLED = (0.0, 0, 1.0), (0.8, 20, 0.8)
HBM_BYTES_PER_S = {"v5e": 819e9, "v5p": 2765e9}  # per chip, cloud.google.com/tpu/docs/v5e and /v5p
QWEN3_4B = {"params": 4.02e9, "layers": 36, "kv_heads": 8, "head_dim": 128}  # bf16: 2 bytes each


def copy_bandwidth(nbytes: int = 256 << 20) -> float:
    """Bytes per second moved (read + write) by the best of 5 NumPy copies."""
    source = np.ones(nbytes // 4, np.float32)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def matmul_flops(size: int = 1024) -> float:
    """FLOP/s of the best of 5 float32 [size, size] @ [size, size] products under jit: the CPU's compute roofline."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def humaneval_chats(count: int) -> list[tuple[str, list[dict]]]:
    from ssd_jax.problems.humaneval import load_humaneval

    return [(p.id, [{"role": "user", "content": "Complete the following Python function:\n```python\n"
                     f"{p.starter_code or p.statement}\n```"}]) for p in load_humaneval()[:count]]


def offline_chats(count: int) -> list[tuple[str, list[dict]]]:
    from ssd_jax.data.offline_problems import load_offline_problems
    from ssd_jax.data.prompt_format import problem_messages

    return [(p.id, problem_messages(p)) for p in load_offline_problems()[:count]]


def run_ssd_jax(loaded, prompts: list[tuple[str, str]], params, new_tokens: int, slots: int) -> dict:
    """Continuous batching (this checkout): wall time after a warm-up on the first 4 prompts, plus step figures."""
    import jax

    from ssd_jax.sampling import Sampler, SampleRequest

    sampler = Sampler(loaded, max_new_tokens=new_tokens, batch_size=slots, seed=0)
    requests = [SampleRequest(pid, 0, text, *params) for pid, text in prompts]
    sampler.generate(requests[:4], progress=False)  # compiles the common programs
    engine = sampler.engine
    steps, decode = [], engine.decode

    def timed_decode(inputs, table, seed):
        start = time.perf_counter()
        out = decode(inputs, table, seed)
        live = inputs.temperature.size - int(np.sum(inputs.kv_len == 1))
        steps.append((time.perf_counter() - start, int(np.sum(inputs.kv_len[inputs.kv_len > 1])), live))
        return out

    compile_seconds = []

    def on_compile(event: str, seconds: float, **_) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compile_seconds.append(seconds)

    prefill, prefill_seconds = engine.prefill, []

    def timed_prefill(*args):  # waits for the chunk, so that decode steps time only themselves
        start = time.perf_counter()
        prefill(*args)
        jax.block_until_ready(engine.cache)
        prefill_seconds.append(time.perf_counter() - start)

    engine.decode, engine.prefill = timed_decode, timed_prefill
    jax.monitoring.register_event_duration_secs_listener(on_compile)
    start = time.perf_counter()
    completions = sampler.generate(requests, progress=False)
    wall = time.perf_counter() - start
    jax.monitoring.unregister_event_duration_listener(on_compile)
    engine.decode, engine.prefill = decode, prefill
    stats = sampler.last_run
    return {"wall": wall, "compile": sum(compile_seconds), "decode": sum(t for t, _, _ in steps),
            "prefill": sum(prefill_seconds), "prefill_chunks": len(prefill_seconds),
            "decode_steps": len(steps), "tokens": sum(len(c.token_ids) + (c.finish_reason == "eos") for c in completions),
            "live": stats.live_fraction, "steps": steps, "peak_pages": stats.peak_pages, "pages": stats.pages,
            "texts": [c.text for c in completions]}


def run_transformers(model, tokenizer_ids: list[list[int]], params, new_tokens: int, eos: list[int]) -> dict:
    import torch

    temperature, top_k, top_p = params
    order = sorted(range(len(tokenizer_ids)), key=lambda i: len(tokenizer_ids[i]))
    tokens = slots_total = 0
    start = time.perf_counter()
    for offset in range(0, len(order), 16):
        batch = [tokenizer_ids[i] for i in order[offset : offset + 16]]
        width = max(map(len, batch))
        ids = torch.tensor([[0] * (width - len(b)) + b for b in batch])
        mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
        options = dict(do_sample=False) if temperature == 0 else dict(do_sample=True, temperature=temperature,
                                                                      top_k=top_k, top_p=top_p)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, eos_token_id=eos,
                                 pad_token_id=eos[0], **options)[:, width:]
        for row in out.tolist():
            ended = [i for i, t in enumerate(row) if t in eos]
            tokens += (ended[0] + 1) if ended else len(row)
        slots_total += out.numel()
    return {"wall": time.perf_counter() - start, "tokens": tokens, "live": tokens / max(slots_total, 1)}


def run_static(commit: str, prompts: list[tuple[str, str]], new_tokens: int, batch: int) -> dict:
    """The former static-batch sampler from `commit`, in a subprocess on its own source tree."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tree:
        with open(os.path.join(tree, "prompts.json"), "w") as f:
            json.dump(prompts, f)
        archive = subprocess.run(["git", "-C", root, "archive", commit, "ssd_jax"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        code = f"""
import json, time
from ssd_jax.checkpoints.load import load_model
from ssd_jax.sampling import Sampler, SampleRequest
loaded = load_model("smollm2-135m-instruct")
reqs = [SampleRequest(pid, 0, text, 0.0, 0, 1.0) for pid, text in json.load(open({os.path.join(tree, "prompts.json")!r}))]
sampler = Sampler(loaded, max_new_tokens={new_tokens}, batch_size={batch}, seed=0)
sampler.generate(reqs[:4], progress=False)
start = time.perf_counter()
out = sampler.generate(reqs, progress=False)
print(json.dumps({{"wall": time.perf_counter() - start,
                  "tokens": sum(len(c.token_ids) + (c.finish_reason == "eos") for c in out),
                  "texts": [c.text for c in out]}}))
"""
        env = dict(os.environ, PYTHONPATH=tree)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["live"] = float("nan")
    return figures


def roofline(steps, weight_bytes: int, kv_bytes_per_token: int, bandwidth: float, slots: int,
             flops_per_token: float, flops_per_kv: float, peak_flops: float) -> tuple[float, float, float]:
    """Over steady steps, medians of (share of the memory roofline, share of the roofline = the larger of
    the memory and compute floors, live KV tokens). A step's compute is `flops_per_token` per live slot
    (the matmuls) plus `flops_per_kv` per live KV token (attention scores and values)."""
    steady = [(t, kv) for t, kv, live in steps if live == slots] or [(t, kv) for t, kv, _ in steps]
    memory = [(weight_bytes + kv * kv_bytes_per_token) / bandwidth / t for t, kv in steady]
    compute = [(slots * flops_per_token + kv * flops_per_kv) / peak_flops / t for t, kv in steady]
    both = [max(m, c) for m, c in zip(memory, compute)]
    return statistics.median(memory), statistics.median(both), statistics.median(kv for _, kv in steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--prompts", type=int, default=235)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--new_tokens", type=int, default=384)
    parser.add_argument("--static_commit", default="b750c2b")
    parser.add_argument("--skip", default="", help="comma-separated: static, transformers, stage1")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a CPU benchmark: do not probe for a TPU

    import jax
    import torch
    import transformers

    from ssd_jax.checkpoints.load import load_model
    from ssd_jax.sampling.sampler import end_of_sequence_ids

    loaded = load_model("smollm2-135m-instruct")
    config = loaded.config
    render = lambda messages: loaded.chat_template.render(messages, add_generation_prompt=True)  # noqa: E731
    eos = list(end_of_sequence_ids(loaded))
    bandwidth = copy_bandwidth()
    weight_bytes = sum(x.nbytes for x in jax.tree.leaves(loaded.model))
    kv_bytes_per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 4
    peak_flops = matmul_flops()
    # Every weight but the input embedding multiplies each live token once (the head reuses it when tied).
    matmul_params = weight_bytes / 4 - (0 if config.tie_word_embeddings else config.vocab_size * config.hidden_size)
    flops_per_token = 2 * matmul_params
    flops_per_kv = 4 * config.num_layers * config.num_heads * config.head_dim  # q·k and p·v per head
    hf = None
    if "transformers" not in skip:
        with tempfile.TemporaryDirectory() as export:
            hf = transformers.AutoModelForCausalLM.from_pretrained(loaded.export_hf(export), dtype=torch.float32).eval()

    rows = []
    workloads = [("greedy HumanEval", humaneval_chats(args.problems), GREEDY)]
    if "stage1" not in skip:
        workloads.append(("sampled stage 1", offline_chats(args.prompts), SAMPLED))
    for name, chats, params in workloads:
        prompts = [(pid, render(messages)) for pid, messages in chats]
        ours = run_ssd_jax(loaded, prompts, params, args.new_tokens, args.slots)
        memory_share, share, kv_tokens = roofline(ours["steps"], weight_bytes, kv_bytes_per_token, bandwidth,
                                                  args.slots, flops_per_token, flops_per_kv, peak_flops)
        rows.append((name, "ssd-jax continuous", ours, (memory_share, share), kv_tokens))
        print(f"{name}: continuous {ours['wall']:.1f} s: {ours['decode']:.1f} s in {ours['decode_steps']} decode steps, "
              f"{ours['prefill']:.1f} s in {ours['prefill_chunks']} prefill chunks (compiling: {ours['compile']:.1f} s "
              f"of these), {ours['tokens']} tokens, memory "
              f"roofline {memory_share:.0%}, roofline (memory or compute) {share:.0%}", flush=True)
        if name.startswith("greedy") and "static" not in skip:
            static = run_static(args.static_commit, prompts, args.new_tokens, args.slots)
            same = sum(a == b for a, b in zip(static["texts"], ours["texts"]))
            rows.append((name, f"ssd-jax static (b. {args.slots}, {same}/{len(prompts)} same text)", static, None, None))
            print(f"{name}: static {static['wall']:.1f} s, {static['tokens']} tokens", flush=True)
        if hf is not None:
            ids = [loaded.tokenizer.encode(text) for _, text in prompts]
            rows.append((name, "transformers (b. 16, sorted)", run_transformers(hf, ids, params, args.new_tokens, eos),
                         None, None))
        print(f"{name}: {len(prompts)} prompts, peak pages {ours['peak_pages']} of {ours['pages']}", flush=True)

    print(f"\ncopy bandwidth {bandwidth / 1e9:.1f} GB/s; matmul {peak_flops / 1e9:.0f} GFLOP/s; "
          f"weights {weight_bytes / 1e6:.0f} MB; "
          f"KV {kv_bytes_per_token} B/token; {args.slots} slots; ≤{args.new_tokens} new tokens\n")
    print("| workload | sampler | wall s | useful tok/s | live slots | × transformers | decode step vs memory roofline | vs roofline (memory or compute) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, who, figures, share, kv_tokens in rows:
        reference = next((f for n, w, f, _, _ in rows if n == name and w.startswith("transformers")), None)
        speedup = f"{reference['wall'] / figures['wall']:.2f}" if reference else "–"
        roof = (f"{share[0]:.0%} (live KV {kv_tokens:.0f} tok) | {share[1]:.0%}" if share is not None
                else "– | –")
        print(f"| {name} | {who} | {figures['wall']:.1f} | {figures['tokens'] / figures['wall']:.1f} | "
              f"{'–' if np.isnan(figures['live']) else format(figures['live'], '.0%')} | {speedup} | {roof} |")
    for name, who, figures, share, kv_tokens in rows:
        if share is None:
            continue
        qwen_kv = 2 * QWEN3_4B["layers"] * QWEN3_4B["kv_heads"] * QWEN3_4B["head_dim"] * 2
        step_bytes = QWEN3_4B["params"] * 2 + kv_tokens * qwen_kv
        floors = ", ".join(f"{chip} {step_bytes / bw * 1e3:.1f} ms ({args.slots / (step_bytes / bw):.0f} tok/s)"
                           for chip, bw in HBM_BYTES_PER_S.items())
        print(f"Qwen3-4B bf16 floor per step at {name}'s steady live KV ({kv_tokens:.0f} tokens): {floors}")


if __name__ == "__main__":
    main()
