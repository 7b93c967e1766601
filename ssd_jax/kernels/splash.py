"""Pallas splash attention (TPU) for causal, packed, grouped-query self-attention.

The kernel works on one example's `[heads, length, head_dim]`; this wrapper vmaps it over the
batch and, when a mesh is in context (`jax.sharding.use_abstract_mesh`), runs it under
`shard_map`: rows split over the mesh's batch axes (`data`, `fsdp`), heads over `model`.
Splash does not scale the queries, so the wrapper does (1/√head_dim, as the reference).
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks
from jax.sharding import PartitionSpec

BATCH_AXES = ("data", "fsdp")
HEAD_AXIS = "model"
LANES = 128  # splash blocks are whole multiples of the TPU's 128 lanes


def unsupported_reason(q_shape: tuple[int, ...], k_shape: tuple[int, ...], mesh) -> str | None:
    """Why splash cannot serve q `[B, T, H, D]` / k `[B, K, T, D]` on `mesh`, or None if it can."""
    batch, length, heads, _ = q_shape
    if length % LANES:
        return f"length {length} is not a multiple of {LANES}"
    if mesh is not None and not mesh.empty:
        rows = math.prod(mesh.shape.get(a, 1) for a in BATCH_AXES)
        if batch % rows:
            return f"{batch} rows do not split over the mesh's data × fsdp = {rows}"
        model = mesh.shape.get(HEAD_AXIS, 1)
        if heads % model or k_shape[1] % model:
            return f"{heads} query / {k_shape[1]} KV heads do not split over model = {model}"
    return None


def block_size(length: int) -> int:
    """The largest of 512, 256, 128 that divides `length` (a multiple of 128)."""
    return next(b for b in (512, 256, LANES) if length % b == 0)


@functools.lru_cache(maxsize=16)
def _kernel(heads: int, length: int, interpret: bool):
    block = block_size(length)
    mask = masks.MultiHeadMask([masks.CausalMask((length, length))] * heads)
    sizes = splash.BlockSizes(
        block_q=block, block_kv=block, block_kv_compute=block,
        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
        block_q_dq=block, block_kv_dq=block,
    )
    with jax.ensure_compile_time_eval():  # concrete mask tables, safe to cache across traces
        return splash.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array | None,
                     *, interpret: bool = False) -> jax.Array:
    """q `[B, T, H, D]`, k/v `[B, K, T, D]`, segment ids `[B, T]` → causal attention `[B, T, H, D]`.

    Check `unsupported_reason` first. `interpret=True` runs the kernel's Pallas program on any
    backend (tests on CPU).
    """
    batch, length, heads, head_dim = q.shape
    if segment_ids is None:
        segment_ids = jax.numpy.zeros((batch, length), jax.numpy.int32)
    q = (q * np.asarray(head_dim**-0.5, q.dtype)).transpose(0, 2, 1, 3)
    mesh = jax.sharding.get_abstract_mesh()
    sharded = not mesh.empty and mesh.size > 1
    local_heads = heads // (mesh.shape.get(HEAD_AXIS, 1) if sharded else 1)
    kernel = _kernel(local_heads, length, interpret)

    def local(q, k, v, segment_ids):
        per_row = lambda q, k, v, s: kernel(q, k, v, splash.SegmentIds(q=s, kv=s))
        return jax.vmap(per_row)(q, k, v, segment_ids)

    if sharded:
        rows = tuple(a for a in BATCH_AXES if a in mesh.shape) or None
        heads_on = HEAD_AXIS if HEAD_AXIS in mesh.shape else None
        spec = PartitionSpec(rows, heads_on)
        local = jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec, PartitionSpec(rows)),
                              out_specs=spec, check_vma=False)
    return local(q, k, v, segment_ids.astype(jax.numpy.int32)).transpose(0, 2, 1, 3)
