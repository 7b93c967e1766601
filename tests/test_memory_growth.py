"""The compiled training step's memory grows linearly with the row length, not quadratically.

XLA's own memory analysis of the compiled CPU program (arguments + outputs + temporaries) for
a small model at 2K, 4K, 8K and 16K tokens per row: with blockwise attention, the chunked
loss and rematerialised blocks every doubling should about double it. Dense [L, L] scores or
whole-row logits would quadruple it.
"""

import jax

from configs import base
from ssd_jax import compiled_fit
from ssd_jax.models import ModelConfig
from ssd_jax.parallel import make_mesh

LENGTHS = (2048, 4096, 8192, 16384)
MAX_RATIO = 2.6

SMALL = ModelConfig(family="qwen3", vocab_size=4096, hidden_size=64, intermediate_size=128, num_layers=2,
                    num_heads=4, num_kv_heads=2, head_dim=16, qk_norm=True, remat="block", attention="blockwise")


def _compiled_bytes(length: int) -> int:
    config = base.get_config()
    config.data.max_length = length
    config.train.update(global_batch=1, micro_batch=1, steps=10, warmup_steps=1)
    mesh = make_mesh(1, 1, 1, devices=jax.devices()[:1])
    step, args = compiled_fit.training_target(config, SMALL, mesh)
    memory = step.lower(*args).compile().memory_analysis()
    return (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
            + memory.temp_size_in_bytes)


def test_training_step_memory_grows_linearly():
    sizes = [_compiled_bytes(length) for length in LENGTHS]
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    print("\ntokens  compiled MiB  ratio to previous")
    for i, (length, size) in enumerate(zip(LENGTHS, sizes)):
        print(f"{length:6d}  {size / 2**20:12.1f}  {'' if i == 0 else f'{ratios[i - 1]:.2f}'}")
    assert max(ratios) <= MAX_RATIO, f"memory grows faster than linearly: ratios {ratios}"
