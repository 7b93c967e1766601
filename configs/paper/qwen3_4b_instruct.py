"""Qwen3-4B-Instruct-2507: LCB v6 pass@1 34.0 → 41.5 in the paper.

Sized for a TPU v5p-32 slice (16 chips, 95 GB HBM each): 4B parameters with float32 master
weights and AdamW state are ~64 GB, split 16 ways by FSDP; one 65k-token row per chip with
rematerialised blocks; global batch 32 = 16 rows × 2 accumulation steps.
"""

from configs.paper.common import paper_config


def get_config():
    c = paper_config(
        name="qwen3_4b_instruct",
        model="models/Qwen3-4B-Instruct-2507",  # Local HF directory (config.json + safetensors).
        thinking=False,
        sample=(1.6, 20, 0.8),
        eval_ssd=(1.1, 20, 0.8),
        eval_base=(0.7, 20, 0.8),
        mesh=dict(data=1, fsdp=16, model=1),
        micro_batch=16,
    )
    c.sampling.batch_size = 8  # rows per host (4 chips) at 128k tokens each: see the compiled figures above
    return c
