"""Lazy, one-tensor-at-a-time readers of HF-named checkpoint tensors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Protocol

import jax
import numpy as np
from safetensors import safe_open


class TensorSource(Protocol):
    """HF-named tensors in HF layout, read on demand."""

    def names(self) -> Iterable[str]: ...

    def get(self, name: str) -> np.ndarray: ...


class SafetensorsSource:
    """All `*.safetensors` files of an HF directory (sharded with an index, or a single file)."""

    def __init__(self, directory: str):
        self.directory = directory
        self._file_of = _tensor_files(directory)

    def names(self) -> Iterable[str]:
        return self._file_of.keys()

    def get(self, name: str) -> np.ndarray:
        if name not in self._file_of:
            raise KeyError(f"tensor {name!r} is not in the safetensors files of {self.directory}")
        path = os.path.join(self.directory, self._file_of[name])
        # The flax framework reads bfloat16 too (numpy cannot); keep it on the host CPU.
        with jax.default_device(jax.local_devices(backend="cpu")[0]):
            with safe_open(path, framework="flax") as f:
                return np.asarray(f.get_tensor(name))


def _tensor_files(directory: str) -> dict[str, str]:
    index_path = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            return dict(json.load(f)["weight_map"])
    files = sorted(p for p in os.listdir(directory) if p.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors files in {directory} (an HF checkpoint directory needs them)")
    file_of = {}
    for file in files:
        with safe_open(os.path.join(directory, file), framework="numpy") as f:
            file_of.update({k: file for k in f.keys()})
    return file_of
