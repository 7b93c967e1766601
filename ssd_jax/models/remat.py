"""Rematerialisation policies for a decoder block: what its forward keeps for the backward pass.

- `none`: everything the backward needs is kept (fastest, most memory);
- `block`: only the block's input is kept; the whole block is recomputed in the backward pass;
- `save_dots`: the outputs of the weight matmuls (projections, MLP) are kept, the rest
  (norms, rope, attention, activations) recomputed — MaxText's "minimal"-style trade;
- `save_qkv`: only the rotated queries, keys and values are kept (named `query`/`key`/`value`
  in the block), so the backward recomputes attention and the MLP but not the projections.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

QKV_NAMES = ("query", "key", "value")


def rematerialised(block: Callable, policy: str) -> Callable:
    """`block` under the named policy (see the module docstring)."""
    if policy == "none":
        return block
    if policy == "block":
        return jax.checkpoint(block, prevent_cse=False)
    if policy == "save_dots":
        return jax.checkpoint(block, prevent_cse=False, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
    if policy == "save_qkv":
        return jax.checkpoint(block, prevent_cse=False, policy=jax.checkpoint_policies.save_only_these_names(*QKV_NAMES))
    raise ValueError(f"unknown remat policy {policy!r}")
