"""The sampler's decode step on the CPU with ssd-jax's paged attention (`kv_cache.paged_attention`:
keys and values gathered as rows straight into the products' layout) against gathering whole
pages and splitting them into keys and values (the formulation it replaced, kept here as the
reference).

SmolLM2-135M-Instruct in float32, pages of 16 tokens: one whole decode step (30 layers, the
head, choosing the tokens) of `--slots` live slots, every slot's table `--widths` pages wide
and full. Both engines alternate step by step in the same process, so load on a shared machine
hits both alike; read the ratio.

    python benchmarks/paged_attention.py [--slots 16,32] [--widths 8,32,64] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a CPU benchmark: do not probe for a TPU

import jax
import jax.numpy as jnp
import numpy as np

from ssd_jax.models.attention import MASKED
from ssd_jax.models.kv_cache import paged_attention

PAGE = 16


def page_gather_attention(q, pages, page_table, kv_lens, q_lens):
    """The reference: gather whole pages `[Q, P, page, 2K, D]`, split keys and values, attend."""
    num_seqs, num_queries, num_heads, head_dim = q.shape
    num_kv = pages.shape[2] // 2
    length = page_table.shape[1] * pages.shape[1]
    kv = pages[page_table].reshape(num_seqs, length, num_kv, 2, head_dim)
    keys, values = kv[..., 0, :], kv[..., 1, :]
    grouped = q.reshape(num_seqs, num_queries, num_kv, num_heads // num_kv, head_dim)
    scores = jnp.einsum("qmkgd,qskd->qkgms", grouped, keys, preferred_element_type=jnp.float32)
    positions = (kv_lens - q_lens)[:, None] + jnp.arange(num_queries)
    slots = jnp.arange(length)
    mask = (slots[None, None, :] <= positions[:, :, None]) & (slots[None, None, :] < kv_lens[:, None, None])
    weights = jax.nn.softmax(jnp.where(mask[:, None, None], scores * head_dim**-0.5, MASKED), axis=-1)
    out = jnp.einsum("qkgms,qskd->qmkgd", weights, values)
    return out.reshape(num_seqs, num_queries, num_heads, head_dim)


def decode_step(engine, slots: int, width: int):
    """A decode step of `slots` live slots, each `width` pages long: (inputs, page table)."""
    from ssd_jax.sampling.engine import idle_slots

    inputs = idle_slots(engine.replicas, slots)
    inputs.kv_len[:] = width * PAGE
    table = (1 + np.arange(slots * width, dtype=np.int32) % (engine.num_pages - 1)).reshape(1, slots, width)
    return inputs, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", default="16,32")
    parser.add_argument("--widths", default="8,32,64")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    from ssd_jax.checkpoints.load import load_model
    from ssd_jax.sampling import engine as engine_module

    loaded = load_model("smollm2-135m-instruct")
    engines = {}
    for name, attention in (("rows", paged_attention), ("pages", page_gather_attention)):
        engine_module.paged_attention = attention  # what the engine attends with, captured when its programs trace
        engine_module.jitted_programs.cache_clear()
        engines[name] = engine_module.PagedEngine(loaded.model, loaded.mesh, num_pages=1025, page_size=PAGE)
    engine_module.paged_attention = paged_attention
    print("| decode step (30 layers) | rows (ssd-jax) ms | whole pages ms | whole pages / rows |")
    print("|---|---:|---:|---:|")
    for slots in map(int, args.slots.split(",")):
        for width in map(int, args.widths.split(",")):
            times = {name: [] for name in engines}
            for repeat in range(args.repeats + 1):
                for name, engine in engines.items():
                    inputs, table = decode_step(engine, slots, width)
                    start = time.perf_counter()
                    engine.decode(inputs, table, 0)
                    if repeat:  # the first call compiles
                        times[name].append(time.perf_counter() - start)
            rows, pages = (float(np.median(times[name])) * 1e3 for name in ("rows", "pages"))
            print(f"| {slots} slots × {width} pages ({width * PAGE} tokens) | {rows:.1f} | {pages:.1f} | "
                  f"{pages / rows:.2f} |", flush=True)


if __name__ == "__main__":
    main()
