"""Training on 8 (fake) devices, tensor parallel and mixed with accumulation, matches one device."""

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


def test_tensor_parallel_matches_one_device(batches, one_device):
    assert_same_training(train_on_mesh(make_mesh(1, 1, 8), batches), one_device, (1, 1, 8))


def test_data_fsdp_tensor_mesh_with_gradient_accumulation_matches_one_device(batches, one_device):
    assert_same_training(train_on_mesh(make_mesh(2, 2, 2), batches, accumulation=2), one_device, (2, 2, 2))
