"""Routing tokens to experts, side by side in one run, forward + backward: the grouped matmul
(`jax.lax.ragged_dot`, what ssd-jax runs on TPU/GPU), GShard-style dispatch/combine with a
capacity, and every expert on every token (`dense_experts`, what ssd-jax runs on CPU).

    python benchmarks/moe.py [--tokens 1024,2048,4096] [--experts 32] [--top_k 4]

Prints, per token count, each method's milliseconds per forward+backward, the ratios to the
grouped matmul, and how many assignments dispatch drops at its capacity factor (the others
drop none). Shapes are a scaled-down gpt-oss layer (embed 256, width 256).
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp

from ssd_jax.models.moe import dense_experts, grouped_experts


def dispatch_combine(x, experts, weights, gate, up, down, capacity_factor):
    """Each expert takes at most `capacity` tokens (in token order); the rest are dropped."""
    num_tokens, top_k = experts.shape
    num_experts = gate.shape[0]
    capacity = math.ceil(capacity_factor * num_tokens * top_k / num_experts)
    one_hot = jax.nn.one_hot(experts, num_experts, dtype=jnp.int32)  # [N, k, E]
    position = jnp.cumsum(one_hot.reshape(-1, num_experts), axis=0).reshape(one_hot.shape) - 1
    kept = one_hot * (position < capacity)
    slot = jax.nn.one_hot(position, capacity, dtype=x.dtype) * kept[..., None]  # [N, k, E, C]
    dispatch = jnp.sum(slot, axis=1)
    combine = jnp.sum(slot * weights[..., None, None], axis=1)
    routed = jnp.einsum("nec,nh->ech", dispatch, x)
    hidden = jax.nn.silu(jnp.einsum("ech,ehm->ecm", routed, gate)) * jnp.einsum("ech,ehm->ecm", routed, up)
    out = jnp.einsum("ecm,emh->ech", hidden, down)
    return jnp.einsum("nec,ech->nh", combine, out), jnp.sum(one_hot) - jnp.sum(kept)


def _time(fn, *args, repeats=3) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", default="1024,2048,4096")
    parser.add_argument("--experts", type=int, default=32)
    parser.add_argument("--top_k", type=int, default=4)
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--capacity_factor", type=float, default=1.25)
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(0), 5)
    e, h, m = args.experts, args.embed, args.width
    gate, up = (jax.random.normal(k, (e, h, m)) * h**-0.5 for k in keys[:2])
    down = jax.random.normal(keys[2], (e, m, h)) * m**-0.5

    def loss(method):
        def f(x, experts, weights, gate, up, down):
            out = method(x, experts, weights, gate, up, down)
            return jnp.sum(out * out)
        return jax.jit(jax.value_and_grad(f, argnums=(0, 3, 4, 5)))

    grouped = loss(grouped_experts)
    dispatch = loss(lambda *a: dispatch_combine(*a, args.capacity_factor)[0])
    dense = loss(dense_experts)
    dropped = jax.jit(lambda *a: dispatch_combine(*a, args.capacity_factor)[1])
    print(f"{jax.default_backend()}: experts {e}, top-{args.top_k}, embed {h}, width {m}, "
          f"capacity factor {args.capacity_factor}")
    print(f"{'tokens':>7} {'grouped ms':>11} {'dispatch ms':>12} {'dense ms':>9} {'dispatch/grouped':>17} "
          f"{'dense/grouped':>14} {'dropped':>10}")
    for n in (int(t) for t in args.tokens.split(",")):
        x = jax.random.normal(keys[3], (n, h))
        logits = x @ jax.random.normal(keys[4], (h, e))
        top, experts = jax.lax.top_k(logits, args.top_k)
        weights = jax.nn.softmax(top, axis=-1)
        operands = (x, experts.astype(jnp.int32), weights, gate, up, down)
        t_grouped, t_dispatch, t_dense = (_time(fn, *operands) for fn in (grouped, dispatch, dense))
        lost = int(dropped(*operands))
        print(f"{n:7d} {t_grouped:11.1f} {t_dispatch:12.1f} {t_dense:9.1f} {t_dispatch / t_grouped:17.2f} "
              f"{t_dense / t_grouped:14.2f} {lost:5d}/{n * args.top_k}")


if __name__ == "__main__":
    main()
