"""Prefill and the decode loop: pure functions of a model, traced once per batch shape.

Layout of one batch (`B` rows, prompt bucket `P`, `N = max_new_tokens`):

* Prompts are left-padded to `P` tokens, so every row writes the same cache slot at every
  step. Row `r` with `L_r` prompt tokens has `P - L_r` padding slots, masked out of every
  attention by `key_mask`, and its own positions `0 .. L_r - 1` (RoPE never sees the padding).
* `prefill` runs the first `P - 1` prompt tokens into a fresh cache of `P - 1 + N` slots;
  their logits are never used, so XLA drops the vocabulary projection for them.
* `decode` feeds the last prompt token, then each drawn token, one slot at a time inside a
  `lax.while_loop`, until every row is done, `N` tokens were drawn, or the call's step
  limit is reached (the caller resumes from the returned `DecodeState`). A row is done after
  an end-of-sequence or stop token, or when it reaches its own token budget (its context
  limit); after that it emits `PAD_ID` and its results no longer change.

Sampling parameters and stop ids are traced arrays, so new values never recompile.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssd_jax.models.kv_cache import KVCache, init_cache
from ssd_jax.models.transformer import Transformer
from ssd_jax.sampling.choose import choose_tokens
from ssd_jax.sampling.keys import sample_keys, token_uniforms

PAD_ID = -1  # What a row emits after it is done.
FINISH_LENGTH, FINISH_EOS, FINISH_STOP = 0, 1, 2  # Per-row finish codes.


class DecodeInputs(NamedTuple):
    """Per-row (`[B]`) inputs of `decode`, besides the cache and the key mask."""

    last_token: jax.Array  # int32: the last prompt token (at slot P - 1)
    last_position: jax.Array  # int32: its position, L_r - 1
    budget: jax.Array  # int32: most tokens this row may draw (0 = an idle padding row)
    temperature: jax.Array  # float32
    top_k: jax.Array  # int32, 0 = off
    top_p: jax.Array  # float32, 1.0 = off
    id_words: jax.Array  # uint32 [B, 2]: hash of the prompt id (keys.prompt_id_words)
    sample_index: jax.Array  # int32
    adaptive: jax.Array  # float32: adaptive-temperature strength (sampling/adaptive.py), 0 = off


class DecodeOutputs(NamedTuple):
    tokens: jax.Array  # int32 [B, N]; PAD_ID after a row's last token
    model_logprobs: jax.Array  # float32 [B, N]: under the model (T = 1, untruncated)
    sampling_logprobs: jax.Array  # float32 [B, N]: under the filtered sampling distribution
    num_tokens: jax.Array  # int32 [B]: tokens drawn, including a final eos / stop token
    finish: jax.Array  # int32 [B]: FINISH_LENGTH | FINISH_EOS | FINISH_STOP


def prefill(model: Transformer, tokens: jax.Array, positions: jax.Array, key_mask: jax.Array,
            layer_params: tuple[dict[str, jax.Array], ...] | None = None) -> KVCache:
    """Writes `tokens [B, P - 1]` into a new cache with as many slots as `key_mask [B, S]`.

    `layer_params`: the layers' weights pre-sliced by the caller, as for `decode`."""
    batch, slots = key_mask.shape
    cache = init_cache(model.config, batch, slots)
    _, cache = model.forward_cached(tokens, positions, cache, 0, key_mask, layer_params)
    return cache


class DecodeState(NamedTuple):
    """Where a batch's decoding stands between calls of `decode` (all rows share `step`)."""

    step: jax.Array  # int32 scalar: tokens drawn so far
    token: jax.Array  # int32 [B]: the next token to feed
    done: jax.Array  # bool [B]
    outputs: DecodeOutputs


def nothing_drawn(batch_size: int, max_new_tokens: int) -> DecodeOutputs:
    """NumPy outputs of rows that drew no token yet (and what idle rows keep)."""
    return DecodeOutputs(
        tokens=np.full((batch_size, max_new_tokens), PAD_ID, np.int32),
        model_logprobs=np.zeros((batch_size, max_new_tokens), np.float32),
        sampling_logprobs=np.zeros((batch_size, max_new_tokens), np.float32),
        num_tokens=np.zeros((batch_size,), np.int32),
        finish=np.full((batch_size,), FINISH_LENGTH, np.int32),
    )


def initial_state(inputs: DecodeInputs, max_new_tokens: int) -> DecodeState:
    """Nothing drawn yet; the last prompt token is fed first; idle rows (budget 0) are done."""
    outputs = jax.tree.map(jnp.asarray, nothing_drawn(inputs.budget.shape[0], max_new_tokens))
    return DecodeState(jnp.int32(0), jnp.asarray(inputs.last_token, jnp.int32), inputs.budget <= 0, outputs)


def decode(
    model: Transformer,
    cache: KVCache,
    key_mask: jax.Array,
    inputs: DecodeInputs,
    state: DecodeState,
    seed: jax.Array,
    eos_ids: jax.Array,
    stop_ids: jax.Array,
    max_steps: int,
    layer_params: tuple[dict[str, jax.Array], ...] | None = None,
) -> tuple[DecodeState, KVCache]:
    """Draws up to `max_steps` more tokens per row from `state` (see the module docstring).

    Stops early when every row is done or the outputs are full (`max_new_tokens` tokens). A
    caller may stop between calls, drop finished rows (`select_rows`) and go on with a
    smaller batch: each token's key depends on its position, not on the batch.

    `eos_ids` and `stop_ids` are int32 `[E]` / `[F]` (pad them with -1): either ends a row,
    with finish code FINISH_EOS or FINISH_STOP (eos wins if a token is in both). Returns the
    final cache too, so that a donated input cache is updated in place rather than copied.

    `layer_params` (`Transformer.layer_params()`, sliced once by the caller) are the layers'
    weights as separate arrays. Without them every step slices the stacked weights, which is free
    where XLA fuses the slice into the matmul, but on the CPU backend copies every weight at every
    step (measured on SmolLM2-135M: 15-30 % of the step's CPU time).
    """
    max_new_tokens = state.outputs.tokens.shape[1]
    first_slot = key_mask.shape[1] - max_new_tokens
    keys = sample_keys(seed, inputs.id_words, inputs.sample_index)
    last_step = jnp.minimum(state.step + max_steps, max_new_tokens)

    def running(state):
        return (state.step < last_step) & ~jnp.all(state.done)

    def draw_one(carry):
        state, cache = carry
        step, token, done, out = state
        position = inputs.last_position + step
        logits, cache = model.forward_cached(
            token[:, None], position[:, None], cache, first_slot + step, key_mask, layer_params
        )
        choice = choose_tokens(
            logits[:, 0], token_uniforms(keys, step), inputs.temperature, inputs.top_k, inputs.top_p,
            inputs.adaptive,
        )
        is_eos = jnp.isin(choice.tokens, eos_ids)
        is_stop = jnp.isin(choice.tokens, stop_ids)
        live = ~done
        out = DecodeOutputs(
            tokens=out.tokens.at[:, step].set(jnp.where(live, choice.tokens, PAD_ID)),
            model_logprobs=out.model_logprobs.at[:, step].set(jnp.where(live, choice.model_logprobs, 0.0)),
            sampling_logprobs=out.sampling_logprobs.at[:, step].set(jnp.where(live, choice.sampling_logprobs, 0.0)),
            num_tokens=out.num_tokens + live.astype(jnp.int32),
            finish=jnp.where(
                live & is_eos, FINISH_EOS, jnp.where(live & is_stop, FINISH_STOP, out.finish)
            ),
        )
        done = done | is_eos | is_stop | (step + 1 >= inputs.budget)
        return DecodeState(step + 1, jnp.where(done, 0, choice.tokens), done, out), cache

    return jax.lax.while_loop(lambda carry: running(carry[0]), draw_one, (state, cache))


def select_rows(rows: jax.Array, *batch_arrays):
    """Rows `rows [B']` of every array in the pytrees `batch_arrays` (leading axis: the batch).

    Scalars (the shared step) pass through. Used to drop finished rows from a batch."""

    def take(x):
        return x if x.ndim == 0 else jnp.take(x, rows, axis=0)

    return jax.tree.map(take, batch_arrays)
