"""The decoder-only transformer: embed → scanned blocks → final norm → logits.

Blocks are stored stacked along a leading `layers` axis and the full-sequence forward runs
them with `jax.lax.scan`, so its compile time does not grow with depth. The cached forward
(prefill / decode) unrolls the layers instead, one cache array per layer, because a scan that
carries the cache copies it and the sliced weights at every step on the CPU backend. Every
parameter carries logical axis names (`axes` metadata); mapping them onto a device mesh is
`ssd_jax.parallel`'s job.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from ssd_jax.models import attention, layers, moe, sink_attention
from ssd_jax.models.remat import QKV_NAMES, rematerialised
from ssd_jax.models.self_attention import self_attention
from ssd_jax.models.config import ModelConfig
from ssd_jax.models.kv_cache import NULL_PAGE, KVCache, PagedKVCache, attend_one_token, paged_attention, write_pages

_INIT_STD = 0.02


def _param(rngs: nnx.Rngs, shape: tuple[int, ...], axes: tuple[str, ...], dtype, ones: bool = False) -> nnx.Param:
    value = jnp.ones(shape, dtype) if ones else _INIT_STD * jax.random.normal(rngs.params(), shape, dtype)
    return nnx.Param(value, axes=axes)


_MLP_PARAMS = ("gate_proj", "up_proj", "down_proj")


def param_layers(config: ModelConfig, name: str) -> tuple[int, ...]:
    """The layers whose weights block parameter `name` stacks, in order: a dense MLP's stack only
    the dense layers (`config.mlp_layers`), the router's and experts' only the sparse ones, every
    other parameter all layers."""
    if name in _MLP_PARAMS:
        return config.mlp_layers
    if name.startswith(("router", "expert_")):
        return config.sparse_layers
    return tuple(range(config.num_layers))


def layer_rows(config: ModelConfig, names) -> tuple[dict[str, int], ...]:
    """For each layer, the row of each stacked block parameter in `names` that holds its weights
    (a layer's dict lacks the feed-forward parameters of the other kind)."""
    rows: list[dict[str, int]] = [{} for _ in range(config.num_layers)]
    for name in names:
        for row, layer in enumerate(param_layers(config, name)):
            rows[layer][name] = row
    return tuple(rows)


class DecoderBlocks(nnx.Module):
    """All decoder blocks' parameters, stacked: pre-norm attention + pre-norm gated MLP or mixture
    of experts. Each feed-forward kind stacks only its own layers (`param_layers`)."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        c, n = config, config.num_layers
        dt = jnp.dtype(c.param_dtype)
        p = functools.partial(_param, rngs, dtype=dt)
        self.attn_norm = p((n, c.hidden_size), ("layers", "norm"), ones=True)
        self.q_proj = p((n, c.hidden_size, c.num_heads, c.head_dim), ("layers", "embed", "heads", "head_dim"))
        self.k_proj = p((n, c.hidden_size, c.num_kv_heads, c.head_dim), ("layers", "embed", "kv_heads", "head_dim"))
        self.v_proj = p((n, c.hidden_size, c.num_kv_heads, c.head_dim), ("layers", "embed", "kv_heads", "head_dim"))
        self.o_proj = p((n, c.num_heads, c.head_dim, c.hidden_size), ("layers", "heads", "head_dim", "embed"))
        if c.qk_norm:
            self.q_norm = p((n, c.head_dim), ("layers", "norm"), ones=True)
            self.k_norm = p((n, c.head_dim), ("layers", "norm"), ones=True)
        if c.attention_bias:
            self.q_bias = p((n, c.num_heads, c.head_dim), ("layers", "heads", "head_dim"))
            self.k_bias = p((n, c.num_kv_heads, c.head_dim), ("layers", "kv_heads", "head_dim"))
            self.v_bias = p((n, c.num_kv_heads, c.head_dim), ("layers", "kv_heads", "head_dim"))
            self.o_bias = p((n, c.hidden_size), ("layers", "norm"))
        if c.attention_sinks:
            self.sinks = p((n, c.num_heads), ("layers", "heads"))
        self.mlp_norm = p((n, c.hidden_size), ("layers", "norm"), ones=True)
        if c.sparse_layers:
            e, m, s = c.num_experts, c.moe_intermediate_size, len(c.sparse_layers)
            self.router = p((s, c.hidden_size, e), ("layers", "embed", "router"))
            self.expert_gate = p((s, e, c.hidden_size, m), ("layers", "experts", "embed", "expert_mlp"))
            self.expert_up = p((s, e, c.hidden_size, m), ("layers", "experts", "embed", "expert_mlp"))
            self.expert_down = p((s, e, m, c.hidden_size), ("layers", "experts", "expert_mlp", "embed"))
            if c.attention_bias:  # gpt-oss: biases on the router and the experts too
                self.router_bias = p((s, e), ("layers", "router"))
                self.expert_gate_bias = p((s, e, m), ("layers", "experts", "expert_mlp"))
                self.expert_up_bias = p((s, e, m), ("layers", "experts", "expert_mlp"))
                self.expert_down_bias = p((s, e, c.hidden_size), ("layers", "experts", "norm"))
        if c.mlp_layers:
            d = len(c.mlp_layers)
            self.gate_proj = p((d, c.hidden_size, c.intermediate_size), ("layers", "embed", "mlp"))
            self.up_proj = p((d, c.hidden_size, c.intermediate_size), ("layers", "embed", "mlp"))
            self.down_proj = p((d, c.intermediate_size, c.hidden_size), ("layers", "mlp", "embed"))

    def stacked(self, dtype) -> dict[str, jax.Array]:
        return {
            name: var[...].astype(dtype)
            for name, var in vars(self).items()
            if isinstance(var, nnx.Param)
        }


def _dense(x: jax.Array, weight: jax.Array, in_dims: int = 1) -> jax.Array:
    """Contracts the last `in_dims` axes of `x` with the first `in_dims` of `weight`, as one 2-D matmul.

    Written as an einsum over a multi-axis weight (e.g. `btnh,nhd->btd`), XLA's CPU backend
    transposes the weight at every call: measured on SmolLM2-135M's 30 q/o projections in one
    decode step, 54 ms as einsums vs 10 ms as 2-D matmuls at batch 1 (83 vs 44 ms at batch 32).
    """
    in_shape, out_shape = weight.shape[:in_dims], weight.shape[in_dims:]
    lead = x.shape[: x.ndim - in_dims]
    flat = x.reshape(-1, math.prod(in_shape)) @ weight.reshape(math.prod(in_shape), math.prod(out_shape))
    return flat.reshape(*lead, *out_shape)


def _attend_inputs(p, x, positions, config: ModelConfig, inv_freq):
    """Projects the normed input to rotated queries `[B,T,H,D]` and keys/values `[B,K,T,D]`."""
    h = layers.rms_norm(x, p["attn_norm"], config.rms_norm_eps)
    q, k, v = _dense(h, p["q_proj"]), _dense(h, p["k_proj"]), _dense(h, p["v_proj"])
    if config.attention_bias:
        q, k, v = q + p["q_bias"], k + p["k_bias"], v + p["v_bias"]
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    if config.qk_norm:
        q = layers.rms_norm(q, p["q_norm"], config.rms_norm_eps)
        k = layers.rms_norm(k, p["k_norm"], config.rms_norm_eps)
    q = layers.apply_rope(q, positions, inv_freq, head_axis=2)
    k = layers.apply_rope(k, positions, inv_freq, head_axis=1)
    factor = layers.rope_attention_factor(config)
    if factor != 1.0:
        q, k = q * jnp.asarray(factor, q.dtype), k * jnp.asarray(factor, k.dtype)
    return q, k, v


def _finish_block(p, x, attn_out, config: ModelConfig):
    """Output projection and feed-forward: (the block's output, the router's float32 logits
    `[tokens, experts]` of a mixture-of-experts block, else None)."""
    x = x + _dense(attn_out, p["o_proj"], in_dims=2)
    if config.attention_bias:
        x = x + p["o_bias"]
    out, router_logits = _feed_forward(p, layers.rms_norm(x, p["mlp_norm"], config.rms_norm_eps), config)
    return x + out, router_logits


def _feed_forward(p, h, config: ModelConfig):
    """The block's feed-forward on normed `h`: experts if `p` holds a router, else the dense MLP."""
    if "router" in p:
        return moe.feed_forward(h, p, config)
    return layers.gated_mlp(h, p["gate_proj"], p["up_proj"], p["down_proj"]), None


class Transformer(nnx.Module):
    """A Llama / Qwen3 / Qwen3-MoE / gpt-oss decoder. Call it on a whole sequence, or `forward_cached` with a KV cache."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        dt = jnp.dtype(config.param_dtype)
        self.embed = _param(rngs, (config.vocab_size, config.hidden_size), ("vocab", "embed"), dt)
        self.blocks = DecoderBlocks(config, rngs)
        self.final_norm = _param(rngs, (config.hidden_size,), ("norm",), dt, ones=True)
        if not config.tie_word_embeddings:
            self.lm_head = _param(rngs, (config.hidden_size, config.vocab_size), ("embed", "vocab"), dt)

    @property
    def _dtype(self):
        return jnp.dtype(self.config.dtype)

    def _embed(self, tokens: jax.Array) -> jax.Array:
        return jnp.take(self.embed[...], tokens, axis=0).astype(self._dtype)

    def output_head(self) -> jax.Array:
        """The `[embed, vocab]` matrix that turns final hidden states into logits (compute dtype)."""
        if self.config.tie_word_embeddings:
            return self.embed[...].astype(self._dtype).T
        return self.lm_head[...].astype(self._dtype)

    def _final_norm(self, x: jax.Array) -> jax.Array:
        return layers.rms_norm(x, self.final_norm[...], self.config.rms_norm_eps)

    def _logits(self, x: jax.Array) -> jax.Array:
        return jnp.einsum("btd,dv->btv", self._final_norm(x), self.output_head(), preferred_element_type=jnp.float32)

    def __call__(
        self,
        tokens: jax.Array,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
    ) -> jax.Array:
        """Full-sequence forward: `tokens [B, L]` → float32 logits `[B, L, V]`.

        With `segment_ids`, attention never crosses segments (packed rows); the caller gives
        `positions` restarting at 0 in each segment.
        """
        return jnp.einsum("btd,dv->btv", self.hidden_states(tokens, positions, segment_ids), self.output_head(),
                          preferred_element_type=jnp.float32)

    def hidden_states(
        self,
        tokens: jax.Array,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
    ) -> jax.Array:
        """The final-normed hidden states `[B, L, embed]` (compute dtype) that `output_head()` maps
        to logits: what a loss that never holds a row's logits (`training.loss`) starts from."""
        return self.hidden_states_and_router_loss(tokens, positions, segment_ids)[0]

    def hidden_states_and_router_loss(
        self,
        tokens: jax.Array,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """`hidden_states`, and the router's load-balancing loss (`moe.load_balancing_loss`, over
        the tokens whose segment id is not 0; 0 for a dense model)."""
        batch, length = tokens.shape
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        config, inv_freq = self.config, layers.rope_inverse_frequencies(self.config)
        counted = (jnp.ones((batch * length,), bool) if segment_ids is None else segment_ids.reshape(-1) != 0)

        def stats(router_logits):
            return moe.load_balancing_stats(router_logits, counted, config.num_experts_per_tok)

        def block(x, layer):
            p, window, rows, sparse = layer
            q, k, v = _attend_inputs(p, x, positions, config, inv_freq)
            q, k, v = (checkpoint_name(a, n) for a, n in zip((q, k, v), QKV_NAMES))
            out = self_attention(q, k, v, segment_ids, config.attention, sinks=p.get("sinks"), window=window)
            if not kind_stacks:  # every layer the same kind: the feed-forward weights are in `p`
                x, router_logits = _finish_block(p, x, out, config)
                return x, None if router_logits is None else stats(router_logits)

            def ffn_of(kind):  # the feed-forward of one kind, its weights at this layer's row
                def run(x):
                    ffn = {name: jax.lax.dynamic_index_in_dim(w, rows[kind], keepdims=False)
                           for name, w in kind_stacks[kind].items()}
                    x, router_logits = _finish_block({**p, **ffn}, x, out, config)
                    return x, (jnp.zeros((3, config.num_experts), jnp.float32) if router_logits is None
                               else stats(router_logits))
                return run

            return jax.lax.cond(sparse, ffn_of("sparse"), ffn_of("dense"), x)

        block = rematerialised(block, config.remat)
        stacked = self.blocks.stacked(self._dtype)
        all_layers = tuple(range(config.num_layers))
        per_layer = {name: w for name, w in stacked.items() if param_layers(config, name) == all_layers}
        mixed = len(per_layer) < len(stacked)  # dense and sparse feed-forwards, each stacked over its layers
        kind_stacks = {"sparse": {n: w for n, w in stacked.items() if n.startswith(("router", "expert_"))},
                       "dense": {n: w for n, w in stacked.items() if n in _MLP_PARAMS}} if mixed else {}
        rank = {kind: {layer: row for row, layer in enumerate(layers_)}
                for kind, layers_ in (("sparse", config.sparse_layers), ("dense", config.mlp_layers))}
        rows = {kind: jnp.asarray([rank[kind].get(i, 0) for i in all_layers], jnp.int32) for kind in rank}
        sparse = jnp.asarray([i in rank["sparse"] for i in all_layers])
        windows = jnp.asarray(config.layer_windows, jnp.int32) if config.layer_windows else None
        x, stats_ = jax.lax.scan(block, self._embed(tokens), (per_layer, windows, rows, sparse))
        router_loss = jnp.zeros((), jnp.float32) if stats_ is None else moe.load_balancing_loss(stats_)
        return self._final_norm(x), router_loss

    def layer_params(self) -> tuple[dict[str, jax.Array], ...]:
        """Each block's parameters as its own arrays (static slices of the stacked ones).

        `forward_cached` slices them itself; a caller that runs it in a loop (the decode loop)
        slices once outside and passes them in, since on the CPU backend every slice of a
        stacked weight is materialised: inside the loop that would copy all weights per step.
        """
        stacked = self.blocks.stacked(self._dtype)
        return tuple({name: stacked[name][row] for name, row in rows.items()}
                     for rows in layer_rows(self.config, stacked))

    def forward_cached(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        write_index: jax.Array | int,
        key_mask: jax.Array,
        layer_params: tuple[dict[str, jax.Array], ...] | None = None,
    ) -> tuple[jax.Array, KVCache]:
        """Prefill or decode: writes `tokens [B, T]` at cache slots `write_index..+T`, attends to
        the slots where `key_mask [B, S]` is true (up to each query's own slot), and returns
        float32 logits `[B, T, V]` with the updated cache.

        The layers are unrolled (one cache array per layer, updated in place, see kv_cache);
        `layer_params` are `self.layer_params()`, given by callers that hoist them out of a loop.
        One token per row (decode) attends with `kv_cache.attend_one_token`. A static (Python
        int) `write_index` lets the queries attend to the slots up to their own only, not to the
        whole cache: a prefill at slot 0 then costs the same however many slots follow it.
        """
        config, inv_freq = self.config, layers.rope_inverse_frequencies(self.config)
        mask = attention.cached_mask(key_mask, write_index, tokens.shape[1])
        seen = write_index + tokens.shape[1] if isinstance(write_index, int) else cache.max_len
        mask = mask[..., :seen]
        zero = jnp.zeros((), jnp.int32)
        at = (zero, zero, jnp.asarray(write_index, jnp.int32), zero)
        x, keys, values = self._embed(tokens), [], []
        query_slots = write_index + jnp.arange(tokens.shape[1])
        windows = config.layer_windows or (0,) * config.num_layers
        layers_in = zip(layer_params or self.layer_params(), cache.keys, cache.values, windows)
        for p, layer_keys, layer_values, window in layers_in:
            q, k, v = _attend_inputs(p, x, positions, config, inv_freq)
            layer_keys = jax.lax.dynamic_update_slice(layer_keys, k.astype(layer_keys.dtype), at)
            layer_values = jax.lax.dynamic_update_slice(layer_values, v.astype(layer_values.dtype), at)
            keys_seen, values_seen = (a[:, :, :seen].astype(q.dtype) for a in (layer_keys, layer_values))
            if config.attention_sinks or window:
                layer_mask = sink_attention.window_mask(mask, window, query_slots)
                out = sink_attention.sink_attention(q, keys_seen, values_seen, layer_mask, p.get("sinks"))
            else:
                attend = attend_one_token if tokens.shape[1] == 1 else attention.grouped_query_attention
                out = attend(q, keys_seen, values_seen, mask)
            x, _ = _finish_block(p, x, out, config)
            keys.append(layer_keys)
            values.append(layer_values)
        return self._logits(x), KVCache(tuple(keys), tuple(values))

    def forward_paged(
        self,
        tokens: jax.Array,
        kv_lens: jax.Array,
        q_lens: jax.Array,
        cache: PagedKVCache,
        page_table: jax.Array,
        layer_params: tuple[dict[str, jax.Array], ...] | None = None,
        attention_fn=paged_attention,
        logits: bool = True,
    ) -> tuple[jax.Array | None, PagedKVCache]:
        """Prefill chunk or decode step over a paged cache (the continuous-batching sampler).

        `tokens [Q, M]`: sequence `i`'s tokens at positions `kv_lens[i] - q_lens[i] + m` for
        `m < q_lens[i]` (the rest are padding, written to `NULL_PAGE` and never read). Each token's
        keys / values go to its page of `page_table [Q, P]`, then every token attends causally to
        its sequence's pages with `attention_fn` (`kv_cache.paged_attention` or the TPU kernel).
        Returns float32 logits `[Q, M, V]` (None with `logits=False`, for a prefill) and the cache.
        """
        config, inv_freq = self.config, layers.rope_inverse_frequencies(self.config)
        num_seqs, num_queries = tokens.shape
        page_size = cache.page_size
        positions = (kv_lens - q_lens)[:, None] + jnp.arange(num_queries, dtype=jnp.int32)
        real = jnp.arange(num_queries)[None, :] < q_lens[:, None]
        page_index = jnp.minimum(positions // page_size, page_table.shape[1] - 1)
        page_ids = jnp.where(real, jnp.take_along_axis(page_table, page_index, axis=1), NULL_PAGE).reshape(-1)
        offsets = (positions % page_size).reshape(-1)
        x, new_pages = self._embed(tokens), []
        windows = config.layer_windows or (0,) * config.num_layers
        for p, pages, window in zip(layer_params or self.layer_params(), cache.pages, windows):
            q, k, v = _attend_inputs(p, x, positions, config, inv_freq)
            flat = (num_seqs * num_queries, config.num_kv_heads, config.head_dim)
            pages = write_pages(pages, k.transpose(0, 2, 1, 3).reshape(flat), v.transpose(0, 2, 1, 3).reshape(flat),
                                page_ids, offsets)
            if config.attention_sinks or window:  # the kernel serves neither: the gather path does
                out = paged_attention(q, pages, page_table, kv_lens, q_lens, window=window, sinks=p.get("sinks"))
            else:
                out = attention_fn(q, pages, page_table, kv_lens, q_lens)
            x, _ = _finish_block(p, x, out, config)
            new_pages.append(pages)
        return (self._logits(x) if logits else None), PagedKVCache(tuple(new_pages))
