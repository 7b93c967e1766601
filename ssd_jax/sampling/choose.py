"""Choosing each row's next token from its logits: filter (temperature, top-k, top-p), then draw.

The draw is inverse-CDF sampling with one uniform number per row: over the surviving tokens in
token-id order, take the first whose cumulative probability exceeds `u · total`. The chosen
token depends only on the filtered distribution and `u`, not on how many other tokens were
looked at, so the two ways of computing it below agree:

* candidates (fast): `lax.top_k` picks the `CANDIDATES + 1` largest logits of every row, and
  `filter_logits` runs on those alone. This is exact when every row is greedy or has
  `1 <= top_k <= CANDIDATES` and its k-th tempered candidate is strictly above the last one
  (so no token tied with the k-th value was cut off): then every survivor is a candidate.
* full vocabulary: `filter_logits` over all `V` logits, for batches where some row has top-k
  off, a larger top-k, or such a tie.

The path is chosen per batch (`lax.cond`), yet a row's token does not depend on it: both
paths filter the same values with the same rules. The only difference is float rounding in
the softmax normaliser and the cumulative sums (over 65 versus `V` entries): a draw can flip
only when `u` lies within a few float32 ulps of a cumulative boundary (~1e-7 per token).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssd_jax.sampling.adaptive import adaptive_temperature
from ssd_jax.sampling.filter import GREEDY_TEMPERATURE, filter_logits

CANDIDATES = 64  # Largest top-k served by the fast candidate path.


class Choice(NamedTuple):
    tokens: jax.Array  # int32 [B]
    model_logprobs: jax.Array  # float32 [B]: log softmax of the raw logits (T = 1, no truncation)
    sampling_logprobs: jax.Array  # float32 [B]: log-prob under the filtered distribution


def _first_above(logprobs: jax.Array, uniforms: jax.Array) -> jax.Array:
    """Inverse-CDF draw over the columns of `logprobs [B, N]` in column order."""
    probs = jnp.exp(logprobs)
    cumulative = jnp.cumsum(probs, axis=-1)
    threshold = uniforms * cumulative[:, -1]
    first_above = jnp.sum(cumulative <= threshold[:, None], axis=-1)
    last_drawable = probs.shape[-1] - 1 - jnp.argmax(probs[:, ::-1] > 0, axis=-1)
    return jnp.minimum(first_above, last_drawable).astype(jnp.int32)


def inverse_cdf(logprobs: jax.Array, uniforms: jax.Array, token_ids: jax.Array | None = None) -> jax.Array:
    """Column of `logprobs [B, N]` drawn with `uniforms [B]`, walking columns in token-id order.

    `token_ids [B, N]` names each column's token (None: column j is token j). Columns at -inf
    are never drawn; if rounding leaves `u · total` at or above the last cumulative sum, the
    last drawable column (in id order) is taken.
    """
    if token_ids is None:
        return _first_above(logprobs, uniforms)
    order = jnp.argsort(token_ids, axis=-1)
    position = _first_above(jnp.take_along_axis(logprobs, order, axis=-1), uniforms)
    return jnp.take_along_axis(order, position[:, None], axis=-1)[:, 0].astype(jnp.int32)


def _candidates_fit(tempered: jax.Array, greedy: jax.Array, top_k: jax.Array) -> jax.Array:
    """Per row: are all top-k survivors among the candidates (see the module docstring)?"""
    count = tempered.shape[-1] - 1
    kth = jnp.take_along_axis(tempered, jnp.clip(top_k - 1, 0, count - 1)[:, None], axis=-1)[:, 0]
    return greedy | ((top_k >= 1) & (top_k <= count) & (kth > tempered[:, count]))


def choose_tokens(
    logits: jax.Array, uniforms: jax.Array, temperature: jax.Array, top_k: jax.Array, top_p: jax.Array,
    adaptive: jax.Array | None = None,
) -> Choice:
    """Filters `logits [B, V]` by each row's temperature / top-k / top-p and draws with `uniforms [B]`.

    `adaptive [B]` (optional): the rows' adaptive-temperature strength, resolved here on the whole
    vocabulary so that both paths below filter at the same temperature."""
    logits = logits.astype(jnp.float32)
    if adaptive is not None:
        temperature = adaptive_temperature(logits, temperature, adaptive)
    vocab = logits.shape[-1]
    count = min(CANDIDATES, vocab - 1)
    values, ids = jax.lax.top_k(logits, count + 1)
    greedy = temperature <= GREEDY_TEMPERATURE
    tempered = values / jnp.where(greedy, 1.0, temperature)[:, None]

    def from_candidates():
        filtered = filter_logits(values, temperature, top_k, top_p)
        column = inverse_cdf(filtered, uniforms, ids)
        chosen = jnp.take_along_axis(ids, column[:, None], axis=-1)[:, 0]
        return chosen, jnp.take_along_axis(filtered, column[:, None], axis=-1)[:, 0]

    def from_vocabulary():
        filtered = filter_logits(logits, temperature, top_k, top_p)
        chosen = inverse_cdf(filtered, uniforms)
        return chosen, jnp.take_along_axis(filtered, chosen[:, None], axis=-1)[:, 0]

    fits = jnp.all(_candidates_fit(tempered, greedy, top_k))
    tokens, sampling_logprobs = jax.lax.cond(fits, from_candidates, from_vocabulary)
    tokens = tokens.astype(jnp.int32)
    chosen_logit = jnp.take_along_axis(logits, tokens[:, None], axis=-1)[:, 0]
    model_logprobs = chosen_logit - jax.nn.logsumexp(logits, axis=-1)
    return Choice(tokens, model_logprobs, sampling_logprobs)
