"""MXFP4 expert weights (gpt-oss checkpoints), dequantised on import.

gpt-oss stores each expert matrix as `<name>_blocks` (uint8 `[.., rows, groups, 16]`, two 4-bit
E2M1 values per byte, low nibble first) and `<name>_scales` (uint8 `[.., rows, groups]`, a
power-of-two exponent biased by 127 shared by each group of 32 values). The dequantised matrix
is `[.., groups * 32, rows]` (transposed, as transformers' `convert_moe_packed_tensors` returns
it). Every value is an E2M1 number times a power of two, so it is exact in bfloat16 and
float32: the weights land in the model's `param_dtype` with no rounding.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ssd_jax.checkpoints.tensor_source import TensorSource

E2M1_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                        -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], np.float32)
BLOCKS, SCALES = "_blocks", "_scales"


def dequantize_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 `[.., groups * 32, rows]` from MXFP4 `blocks [.., rows, groups, 16]`, `scales [.., rows, groups]`."""
    blocks, scales = np.asarray(blocks, np.uint8), np.asarray(scales)
    if blocks.shape[:-1] != scales.shape:
        raise ValueError(f"MXFP4 blocks {blocks.shape} and scales {scales.shape} do not match")
    values = np.empty((*blocks.shape[:-1], blocks.shape[-1] * 2), np.float32)
    values[..., 0::2] = E2M1_VALUES[blocks & 0x0F]
    values[..., 1::2] = E2M1_VALUES[blocks >> 4]
    values = np.ldexp(values, (scales.astype(np.int32) - 127)[..., None])
    values = values.reshape(*blocks.shape[:-2], -1)  # [.., rows, groups * 32]
    return np.swapaxes(values, -1, -2)


class _Dequantizing:
    """`source` with every `<name>_blocks` / `<name>_scales` pair shown as one dequantised `<name>`."""

    def __init__(self, source: TensorSource, quantized: set[str]):
        self.source, self.quantized = source, quantized
        self._last: tuple[str, np.ndarray] | None = None  # gate and up are both read from one tensor

    def names(self) -> Iterable[str]:
        hidden = {n + suffix for n in self.quantized for suffix in (BLOCKS, SCALES)}
        return [n for n in self.source.names() if n not in hidden] + sorted(self.quantized)

    def get(self, name: str) -> np.ndarray:
        if name not in self.quantized:
            return self.source.get(name)
        if self._last is None or self._last[0] != name:
            self._last = name, dequantize_mxfp4(self.source.get(name + BLOCKS), self.source.get(name + SCALES))
        return self._last[1]


def dequantizing(source: TensorSource) -> TensorSource:
    """`source`, dequantising any MXFP4 tensors it holds on read (unchanged if it has none)."""
    names = set(source.names())
    quantized = {n[: -len(BLOCKS)] for n in names if n.endswith(BLOCKS) and n[: -len(BLOCKS)] + SCALES in names}
    return _Dequantizing(source, quantized) if quantized else source
