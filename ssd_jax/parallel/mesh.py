"""Device meshes with the four axes ssd-jax shards over: data, fsdp, expert, model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np

from ssd_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "expert", "model")
BATCH_AXES = ("data", "fsdp", "expert")  # the axes a batch's rows are split over


def make_mesh(
    data: int = -1, fsdp: int = 1, model: int = 1, devices: Sequence[jax.Device] | None = None, *, expert: int = 1,
) -> jax.sharding.Mesh:
    """A `(data, fsdp, expert, model)` mesh; `-1` on one axis takes all devices left over.

    `expert` splits the experts of mixture-of-experts layers (and, outside them, the batch).
    Axes are `AxisType.Auto`: shardings are given at `jit` boundaries and XLA propagates
    them inside (GSPMD), so model code needs no sharding annotations.
    """
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, expert, model]
    described = f"data={data}, fsdp={fsdp}, expert={expert}, model={model}"
    if sizes.count(-1) > 1:
        raise ConfigError(f"mesh: at most one axis may be -1, got {described}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ConfigError(f"mesh {described}: the {len(devices)} devices do not "
                              f"divide by the fixed axes' product {known}; make it divide {len(devices)}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ConfigError(
            f"mesh data={sizes[0]} × fsdp={sizes[1]} × expert={sizes[2]} × model={sizes[3]} needs "
            f"{math.prod(sizes)} devices, but {len(devices)} are available; make the product {len(devices)}, "
            "or set one axis to -1"
        )
    grid = np.asarray(devices, dtype=object).reshape(sizes)
    return jax.sharding.Mesh(grid, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def batch_shards(mesh: jax.sharding.Mesh) -> int:
    """How many ways a batch's rows split over `mesh` (its data × fsdp × expert size)."""
    return math.prod(mesh.shape.get(axis, 1) for axis in BATCH_AXES)


def single_device_mesh() -> jax.sharding.Mesh:
    """A 1×1×1×1 mesh on the first device: the same code path as a real mesh."""
    return make_mesh(1, 1, 1, devices=jax.devices()[:1])
