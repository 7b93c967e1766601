"""Device meshes, logical-axis rules and placement helpers."""

from ssd_jax.parallel.mesh import MESH_AXES, batch_shards, make_mesh, sampler_mesh, single_device_mesh
from ssd_jax.parallel.placement import HostShards, shard_model, sharding_for, state_shardings
from ssd_jax.parallel.rules import DEFAULT_RULES, logical_to_spec

__all__ = [
    "DEFAULT_RULES", "HostShards", "MESH_AXES", "batch_shards", "logical_to_spec", "make_mesh", "sampler_mesh",
    "shard_model", "sharding_for", "single_device_mesh", "state_shardings",
]
