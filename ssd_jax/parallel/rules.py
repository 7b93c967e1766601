"""Logical axis names → mesh axes.

Model code names its axes (`embed`, `heads`, `mlp`, ...); these rules decide where each
lives on the mesh: tensor parallelism over heads / mlp / vocab on `model`, parameters and
optimizer state split over `fsdp`, whole experts of a mixture-of-experts layer over `expert`,
the batch over `data`, `fsdp` and `expert` (the expert axis is data-parallel outside the experts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from jax.sharding import PartitionSpec

Rules = Sequence[tuple[str, str | tuple[str, ...] | None]]

DEFAULT_RULES: Rules = (
    ("batch", ("data", "fsdp", "expert")),
    ("vocab", "model"),
    ("embed", "fsdp"),
    ("heads", "model"),
    ("kv_heads", "model"),
    ("mlp", "model"),
    ("experts", "expert"),
    ("expert_mlp", "model"),
    ("head_dim", None),
    ("layers", None),
    ("norm", None),
    ("length", None),
    ("cache_len", None),
)


def logical_to_spec(
    axes: Sequence[str | None], shape: Sequence[int], mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES
) -> PartitionSpec:
    """The partition spec for an array of `shape` whose dimensions are named `axes`.

    A mesh axis is used at most once, and only on a dimension it divides evenly; otherwise
    that dimension stays replicated (e.g. 3 KV heads on a model axis of 2).
    """
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name, size in zip(axes, shape, strict=True):
        wanted = table.get(name) if name is not None else None
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted or ())
        chosen = []
        for mesh_axis in wanted:
            if mesh_axis in used or mesh.shape.get(mesh_axis, 1) == 1:
                continue
            if size % (math.prod(mesh.shape[a] for a in chosen) * mesh.shape[mesh_axis]) == 0:
                chosen.append(mesh_axis)
        used.update(chosen)
        spec.append(None if not chosen else chosen[0] if len(chosen) == 1 else tuple(chosen))
    return PartitionSpec(*spec)
