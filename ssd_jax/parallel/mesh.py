"""Device meshes with the three axes ssd-jax shards over: data, fsdp, model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np

from ssd_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "model")


def make_mesh(
    data: int = -1, fsdp: int = 1, model: int = 1, devices: Sequence[jax.Device] | None = None
) -> jax.sharding.Mesh:
    """A `(data, fsdp, model)` mesh; `-1` on one axis takes all devices left over.

    Axes are `AxisType.Auto`: shardings are given at `jit` boundaries and XLA propagates
    them inside (GSPMD), so model code needs no sharding annotations.
    """
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, model]
    if sizes.count(-1) > 1:
        raise ConfigError(f"mesh: at most one axis may be -1, got data={data}, fsdp={fsdp}, model={model}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ConfigError(f"mesh data={data}, fsdp={fsdp}, model={model}: the {len(devices)} devices do not "
                              f"divide by the fixed axes' product {known}; make it divide {len(devices)}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ConfigError(
            f"mesh data={sizes[0]} × fsdp={sizes[1]} × model={sizes[2]} needs {math.prod(sizes)} devices, "
            f"but {len(devices)} are available; make the product {len(devices)}, or set one axis to -1"
        )
    grid = np.asarray(devices, dtype=object).reshape(sizes)
    return jax.sharding.Mesh(grid, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3)


def single_device_mesh() -> jax.sharding.Mesh:
    """A 1×1×1 mesh on the first device: the same code path as a real mesh."""
    return make_mesh(1, 1, 1, devices=jax.devices()[:1])
