"""Training on 8 (fake) devices, data parallel and FSDP, matches training on one device."""

import pytest
from sharded_training import (
    assert_same_training,
    one_device_run,
    pipeline_batches,
    train_on_mesh,
)

from ssd_jax.parallel import make_mesh


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    return pipeline_batches(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def one_device(batches):
    return one_device_run(batches)


@pytest.mark.parametrize("mesh_shape", [(8, 1, 1), (1, 8, 1)], ids=["data_parallel", "fsdp"])
def test_sharded_training_matches_one_device(mesh_shape, batches, one_device):
    assert_same_training(train_on_mesh(make_mesh(*mesh_shape), batches), one_device, mesh_shape)
