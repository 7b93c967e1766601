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


def sampler_mesh(devices: Sequence[jax.Device], model_parallel: int = 1, expert_parallel: int = 1,
                 section: str = "sampling") -> jax.sharding.Mesh:
    """One process's sampling mesh: `model_parallel` devices split each layer's heads and widths,
    `expert_parallel` split the experts of mixture-of-experts layers (whole experts per device, and
    each expert-axis device keeps its own cache replica: the axis is data-parallel outside the
    experts), the rest of `devices` split the batch."""
    for name, value in (("model_parallel", model_parallel), ("expert_parallel", expert_parallel)):
        if value < 1 or len(devices) % value:
            raise ConfigError(f"{section}.{name}={value}: must be >= 1 and divide this process's "
                              f"{len(devices)} devices")
    if len(devices) % (model_parallel * expert_parallel):
        raise ConfigError(f"{section}.model_parallel × expert_parallel = {model_parallel * expert_parallel} "
                          f"must divide this process's {len(devices)} devices")
    return make_mesh(data=-1, fsdp=1, expert=expert_parallel, model=model_parallel, devices=devices)


def batch_shards(mesh: jax.sharding.Mesh) -> int:
    """How many ways a batch's rows split over `mesh` (its data × fsdp × expert size)."""
    return math.prod(mesh.shape.get(axis, 1) for axis in BATCH_AXES)


def single_device_mesh() -> jax.sharding.Mesh:
    """A 1×1×1×1 mesh on the first device: the same code path as a real mesh."""
    return make_mesh(1, 1, 1, devices=jax.devices()[:1])
