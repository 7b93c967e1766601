"""Per-row temperature / top-k / top-p filtering of next-token logits, in the paper's order.

Order, for every row independently:

1. Temperature: divide the logits by `T`. A row with `T <= GREEDY_TEMPERATURE` is greedy:
   log-prob 0 on its argmax (the lowest index among equal maxima), -inf elsewhere.
2. Top-k on the tempered logits: keep every token whose tempered logit is >= the k-th
   largest value, so tokens tied with the k-th value are all kept (the same rule as
   HF `TopKLogitsWarper`, which removes `logits < kth_value`). `k <= 0` or `k >= V` is off.
3. Top-p over the softmax of the top-k survivors: a token is kept iff the probability mass
   of the tokens strictly more likely than it is `< p`. The most likely token is always
   kept; `p >= 1` is off. Without ties this is exactly HF `TopPLogitsWarper` (which sorts
   ascending and removes a token when the inclusive cumulative mass is `<= 1 - p`, i.e. when
   the mass before it in descending order is `>= p`). With ties at the boundary HF's outcome
   depends on its unstable sort order; here tied tokens share one fate (all kept or all
   dropped). The mass above a token is one float32 sum, so rounding can differ from HF
   only when `p` lies within ~1e-7 of a cumulative boundary.
4. The result is the log-softmax of the tempered logits over the survivors; removed tokens
   are -inf.

Cost: no sort. Each threshold (the k-th largest value, the smallest kept value under top-p)
is found exactly by bisection over the order-preserving int32 image of the float32 values:
32 masked counts / sums over `[B, V]` each, i.e. O(64·V) per row of plain reductions, with
per-row `top_k`/`top_p` traced (a grid of them never recompiles). On 2 CPU cores at B=8,
V=151,936 this took ~60 ms against ~420 ms for a full sort; on accelerators reductions are
bandwidth-bound and sorts are not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssd_jax.sampling.adaptive import adaptive_temperature

GREEDY_TEMPERATURE = 1e-5
_BISECTION_STEPS = 32  # halves any int32 interval down to adjacent integers


def _order_keys(values: jax.Array) -> jax.Array:
    """int32 keys that order like the float32 values (-0.0 and 0.0 share a key)."""
    values = jnp.where(values == 0.0, 0.0, values)
    bits = jax.lax.bitcast_convert_type(values, jnp.int32)
    return jnp.where(bits >= 0, bits, bits ^ jnp.int32(0x7FFFFFFF))


def _midpoint(low: jax.Array, high: jax.Array) -> jax.Array:
    """floor((low + high) / 2) without int32 overflow."""
    return (low >> 1) + (high >> 1) + (low & high & 1)


def _kth_largest_key(keys: jax.Array, top_k: jax.Array) -> jax.Array:
    """The key of the k-th largest value per row: the largest u with #(keys >= u) >= k."""

    def step(_, bounds):
        low, high = bounds  # #(keys >= low) >= k > #(keys >= high)
        mid = _midpoint(low, high)
        enough = jnp.sum(keys >= mid[:, None], axis=-1) >= top_k
        return jnp.where(enough, mid, low), jnp.where(enough, high, mid)

    bounds = (jnp.min(keys, axis=-1), jnp.max(keys, axis=-1) + 1)
    return jax.lax.fori_loop(0, _BISECTION_STEPS, step, bounds)[0]


def _nucleus_key(keys: jax.Array, probs: jax.Array, top_p: jax.Array, low: jax.Array) -> jax.Array:
    """The smallest u per row whose mass strictly above it, sum(probs[keys > u]), is < p.

    `low` must have all the mass above it; the row maximum always qualifies (for p > 0), so
    the most likely token is always kept.
    """

    def step(_, bounds):
        low, high = bounds  # mass above low >= p > mass above high
        mid = _midpoint(low, high)
        small = jnp.sum(jnp.where(keys > mid[:, None], probs, 0.0), axis=-1) < top_p
        return jnp.where(small, low, mid), jnp.where(small, mid, high)

    bounds = (low, jnp.max(keys, axis=-1))
    return jax.lax.fori_loop(0, _BISECTION_STEPS, step, bounds)[1]


def filter_logits(
    logits: jax.Array, temperature: jax.Array, top_k: jax.Array, top_p: jax.Array,
    adaptive: jax.Array | None = None,
) -> jax.Array:
    """Temperature, then top-k, then top-p; returns log-probs `[B, V]` (-inf = removed).

    Args:
      logits: `[B, V]` float logits.
      temperature: `[B]`; `<= 1e-5` means greedy (one-hot on the argmax).
      top_k: `[B]` int; 0 (or >= V) disables top-k.
      top_p: `[B]`; 1.0 disables top-p.
      adaptive: optional `[B]` strength of the per-position temperature (`adaptive.py`); 0 or None is off.
    """
    logits = jnp.asarray(logits, jnp.float32)
    temperature = jnp.asarray(temperature, jnp.float32)
    if adaptive is not None:
        temperature = adaptive_temperature(logits, temperature, adaptive)
    top_k = jnp.asarray(top_k, jnp.int32)
    top_p = jnp.asarray(top_p, jnp.float32)

    greedy = temperature <= GREEDY_TEMPERATURE
    tempered = logits / jnp.where(greedy, 1.0, temperature)[:, None]
    keys = _order_keys(tempered)

    top_k_off = (top_k <= 0) | (top_k >= logits.shape[-1])
    kth = jnp.where(top_k_off, jnp.min(keys, axis=-1), _kth_largest_key(keys, top_k))
    top_k_kept = keys >= kth[:, None]
    probs = jax.nn.softmax(jnp.where(top_k_kept, tempered, -jnp.inf), axis=-1)
    nucleus = jnp.maximum(_nucleus_key(keys, probs, top_p, kth - 1), kth)
    cutoff = jnp.where(top_p >= 1.0, kth, nucleus)

    filtered = jax.nn.log_softmax(jnp.where(keys >= cutoff[:, None], tempered, -jnp.inf), axis=-1)
    argmax = jnp.argmax(logits, axis=-1)
    one_hot = jnp.where(jnp.arange(logits.shape[-1]) == argmax[:, None], 0.0, -jnp.inf)
    return jnp.where(greedy[:, None], one_hot, filtered)

