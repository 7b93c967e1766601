"""Causal attention forward + backward on the CPU: the reference (dense scores) vs blockwise.

Both run the same packed rows (two segments per row) with grouped-query heads, float32, in the
same process, alternating per length so load changes on a shared machine hit both alike; read
the ratio. Reported per length: tokens/s of one jitted forward + backward (median of
`--repeats`), and the compiled program's temporary memory (XLA's memory analysis). The
reference is only run where its temporaries stay under `--max_temp_gib`; above that only its
compiled figure is shown.

    python benchmarks/attention.py [--lengths 2048,4096,8192,16384] [--heads 2] [--kv_heads 1] [--head_dim 64]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ssd_jax.models import attention
from ssd_jax.models.blockwise_attention import blockwise_attention


def _program(fn, segments, cotangent):
    loss = lambda q, k, v: jnp.sum(fn(q, k, v, segments) * cotangent)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _reference(q, k, v, segments):
    return attention.grouped_query_attention(q, k, v, attention.causal_segment_mask(segments, q.shape[1], q.shape[0]))


def _measure(fn, args, repeats, max_temp_bytes):
    compiled = fn.lower(*args).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    if temp > max_temp_bytes:
        return None, temp
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), temp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="2048,4096,8192,16384")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--kv_heads", type=int, default=1)
    parser.add_argument("--head_dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_temp_gib", type=float, default=2.0)
    a = parser.parse_args()
    print(f"backend {jax.default_backend()}, {jax.local_device_count()} device(s); 1 row, {a.heads} query / "
          f"{a.kv_heads} KV heads of {a.head_dim}, float32, 2 packed segments per row; forward + backward")
    print("| tokens | reference tokens/s | blockwise tokens/s | blockwise / reference | reference temp MiB | blockwise temp MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for length in (int(x) for x in a.lengths.split(",")):
        r = np.random.RandomState(0)
        q = jnp.asarray(r.randn(1, length, a.heads, a.head_dim), jnp.float32)
        k, v = (jnp.asarray(r.randn(1, a.kv_heads, length, a.head_dim), jnp.float32) for _ in range(2))
        segments = jnp.asarray((np.arange(length) >= length // 3).astype(np.int32)[None] + 1)
        cotangent = jnp.asarray(r.randn(*q.shape), jnp.float32)
        results = {}
        for name, fn in (("reference", _reference), ("blockwise", blockwise_attention)):
            results[name] = _measure(_program(fn, segments, cotangent), (q, k, v), a.repeats, a.max_temp_gib * 2**30)
        (ref_s, ref_temp), (blk_s, blk_temp) = results["reference"], results["blockwise"]
        rate = lambda s: "not run" if s is None else f"{length / s:,.0f}"
        ratio = "–" if ref_s is None else f"{ref_s / blk_s:.2f}"
        print(f"| {length} | {rate(ref_s)} | {rate(blk_s)} | {ratio} | {ref_temp / 2**20:,.0f} | {blk_temp / 2**20:,.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
