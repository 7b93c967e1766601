"""The TPU paged attention kernel as the sampler calls it: which calls it can serve, and how it
runs on a device mesh.

The kernel lowers only head dims that are whole 128-lane multiples and KV head counts that tile
(`unsupported_reason`: SmolLM2-135M's 3 KV heads of 64 do not); the sampler attends with the
gather path there. On a mesh each chip attends over its own cache replicas and KV heads, under
`shard_map` (XLA cannot partition a Mosaic kernel: "Mosaic kernels cannot be automatically
partitioned").

The sampler calls attention once per cache replica, inside a `vmap` over the replicas, which are
split over the mesh's batch axes. `custom_vmap` catches that vmap, so the replica axis becomes the
axis `shard_map` splits over the batch axes (not an axis gathered onto every chip); KV heads (and
their query heads) split over `model`, as the cache and the projections split them.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from ssd_jax.kernels.ragged_paged_attention import get_min_heads_per_blk

logger = logging.getLogger(__name__)

BATCH_AXES = ("data", "fsdp", "expert")
HEAD_AXIS = "model"
LANES = 128

Attend = Callable[..., jax.Array]  # (q, pages, page_table, kv_lens, q_lens) -> out, on one device's shards


def unsupported_reason(q: jax.Array, pages: jax.Array) -> str | None:
    """Why the kernel cannot attend q `[Q, M, H, D]` over `pages` `[N, page, 2K, D]` on the
    abstract mesh in context (each chip holding its share of the heads), or None if it can."""
    num_heads, head_dim = q.shape[-2:]
    if head_dim % LANES:
        return f"head_dim {head_dim} is not a multiple of {LANES}"
    kv_heads = pages.shape[-2] // 2
    model = _head_shards(jax.sharding.get_abstract_mesh(), kv_heads)
    try:
        get_min_heads_per_blk(num_heads // model, 2 * kv_heads // model, q.dtype, pages.dtype)
    except ValueError as error:
        return f"{kv_heads // model} KV heads per chip: {error}"
    return None


@functools.lru_cache(maxsize=64)
def log_fallback(reason: str) -> None:
    logger.warning("paged attention: the TPU kernel cannot serve this call (%s); using the gather path", reason)


def _head_shards(mesh, kv_heads: int) -> int:
    """How many ways the heads split: `model`, where it divides the KV heads (as the cache splits)."""
    model = 1 if mesh.empty else mesh.shape.get(HEAD_AXIS, 1)
    return model if kv_heads % model == 0 else 1


def on_mesh(attend: Attend, q: jax.Array, pages: jax.Array, page_table: jax.Array, kv_lens: jax.Array,
            q_lens: jax.Array) -> jax.Array:
    """`attend(q, pages, page_table, kv_lens, q_lens)` on the abstract mesh in context: as is
    without one (or on one device), else per device under `shard_map`."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return attend(q, pages, page_table, kv_lens, q_lens)
    over_replicas = jax.custom_batching.custom_vmap(functools.partial(_sharded, attend, mesh, 0))
    over_replicas.def_vmap(functools.partial(_replica_rule, attend, mesh))
    return over_replicas(q, pages, page_table, kv_lens, q_lens)


def _replica_rule(attend: Attend, mesh, axis_size: int, in_batched: list[bool], *args: jax.Array):
    """Under the sampler's vmap: every argument gets the leading replica axis, split over the
    batch axes."""
    args = [a if batched else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, batched in zip(args, in_batched)]
    return _sharded(attend, mesh, axis_size, *args), True


def _sharded(attend: Attend, mesh, replicas: int, q, pages, page_table, kv_lens, q_lens) -> jax.Array:
    """`attend` per device: `replicas` > 0 leading replica axes split over the batch axes that
    divide them, heads over `model` where it divides the KV heads; each device loops over its
    own replicas."""
    heads = HEAD_AXIS if _head_shards(mesh, pages.shape[-2] // 2) > 1 else None
    rows = tuple(a for a in BATCH_AXES if mesh.shape.get(a, 1) > 1) if replicas else ()
    rows = rows if rows and replicas % math.prod(mesh.shape[a] for a in rows) == 0 else ()
    lead = (rows or None,) if replicas else ()

    def local(q, pages, page_table, kv_lens, q_lens):
        if not replicas:
            return attend(q, pages, page_table, kv_lens, q_lens)
        return jnp.stack([attend(*(x[r] for x in (q, pages, page_table, kv_lens, q_lens)))
                          for r in range(q.shape[0])])

    head_spec = PartitionSpec(*lead, None, None, heads, None)  # q `[.., Q, M, H, D]`, pages `[.., N, page, 2K, D]`
    specs = (head_spec, head_spec, PartitionSpec(*lead, None), PartitionSpec(*lead), PartitionSpec(*lead))
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=head_spec, check_vma=False)(
        q, pages, page_table, kv_lens, q_lens)
