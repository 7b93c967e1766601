"""Per-row temperature / top-k / top-p filtering of next-token logits (DESIGN §1).

Order, for every row independently:

1. Temperature: divide the logits by `T`. A row with `T <= GREEDY_TEMPERATURE` is greedy:
   log-prob 0 on its argmax (the lowest index among equal maxima), -inf elsewhere.
2. Top-k on the tempered logits: keep every token whose tempered logit is >= the k-th
   largest value, so tokens tied with the k-th value are all kept (the same rule as
   HF `TopKLogitsWarper`, which removes `logits < kth_value`). `k <= 0` or `k >= V` is off.
3. Top-p over the softmax of the top-k survivors: sort them by probability, descending;
   a token is kept iff the probability mass of the tokens strictly more likely than it is
   `< p`. The most likely token is always kept; `p >= 1` is off. Without ties this is exactly
   HF `TopPLogitsWarper` (it removes a token when the ascending inclusive cumulative mass is
   `<= 1 - p`, i.e. when the mass before it in descending order is `>= p`). With ties at the
   boundary HF's outcome depends on its unstable sort order; here tied tokens share one fate
   (all kept or all dropped). Cumulative sums are taken in descending order, so float
   rounding can differ from HF only when `p` lies within ~1e-7 of a cumulative boundary.
4. The result is the log-softmax of the tempered logits over the survivors; removed tokens
   are -inf.

Cost: one full descending sort of each `[V]` row (O(V log V)) serves both truncations,
because `top_k` and `top_p` are traced per-row values (a grid of them never recompiles). Not
yet measured against the decode step; if it shows up, a static candidate cap via
`jax.lax.top_k` would serve rows whose top-k is on, but not rows with top-k off and top-p on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GREEDY_TEMPERATURE = 1e-5


def _kth_largest(sorted_desc: jax.Array, top_k: jax.Array) -> jax.Array:
    """The k-th largest value per row ([B, 1]); -inf (keep everything) where top-k is off."""
    vocab = sorted_desc.shape[-1]
    off = (top_k <= 0) | (top_k >= vocab)
    index = jnp.clip(top_k, 1, vocab) - 1
    kth = jnp.take_along_axis(sorted_desc, index[:, None], axis=-1)
    return jnp.where(off[:, None], -jnp.inf, kth)


def _nucleus_cutoff(sorted_desc: jax.Array, top_p: jax.Array) -> jax.Array:
    """The smallest kept logit per row ([B, 1]) under the top-p rule on sorted survivors."""
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    num_kept = jnp.maximum(jnp.sum(mass_before < top_p[:, None], axis=-1), 1)
    cutoff = jnp.take_along_axis(sorted_desc, (num_kept - 1)[:, None], axis=-1)
    return jnp.where((top_p >= 1.0)[:, None], -jnp.inf, cutoff)


def filter_logits(
    logits: jax.Array, temperature: jax.Array, top_k: jax.Array, top_p: jax.Array
) -> jax.Array:
    """Temperature, then top-k, then top-p; returns log-probs `[B, V]` (-inf = removed).

    Args:
      logits: `[B, V]` float logits.
      temperature: `[B]`; `<= 1e-5` means greedy (one-hot on the argmax).
      top_k: `[B]` int; 0 (or >= V) disables top-k.
      top_p: `[B]`; 1.0 disables top-p.
    """
    logits = jnp.asarray(logits, jnp.float32)
    temperature = jnp.asarray(temperature, jnp.float32)
    top_k = jnp.asarray(top_k, jnp.int32)
    top_p = jnp.asarray(top_p, jnp.float32)

    greedy = temperature <= GREEDY_TEMPERATURE
    tempered = logits / jnp.where(greedy, 1.0, temperature)[:, None]

    sorted_desc = jnp.sort(tempered, axis=-1, descending=True)
    kth = _kth_largest(sorted_desc, top_k)
    top_k_survivors = jnp.where(sorted_desc >= kth, sorted_desc, -jnp.inf)
    cutoff = jnp.maximum(kth, _nucleus_cutoff(top_k_survivors, top_p))

    filtered = jax.nn.log_softmax(jnp.where(tempered >= cutoff, tempered, -jnp.inf), axis=-1)
    argmax = jnp.argmax(logits, axis=-1)
    one_hot = jnp.where(jnp.arange(logits.shape[-1]) == argmax[:, None], 0.0, -jnp.inf)
    return jnp.where(greedy[:, None], one_hot, filtered)


def sample_token(key: jax.Array, logprobs: jax.Array) -> jax.Array:
    """Draws one token id per row of `logprobs` `[B, V]` → int32 `[B]`.

    `key` is either one PRNG key (rows drawn from it jointly) or a batch of `B` keys, one
    per row, so that a row's draw does not depend on the other rows of the batch.
    """
    is_typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    batched = key.ndim == (1 if is_typed else 2)
    if batched:
        draw = jax.vmap(lambda k, row: jax.random.categorical(k, row))
        return draw(key, logprobs).astype(jnp.int32)
    return jax.random.categorical(key, logprobs, axis=-1).astype(jnp.int32)
