"""Llama-3.1-8B-Instruct: LCB v6 pass@1 12.7 → 16.2 in the paper.

Sized for a TPU v5p-64 slice (32 chips): 8B parameters with float32 master weights and AdamW
state are ~128 GB, FSDP over 16 chips × tensor parallel 2 (its 8 KV heads split in two) leaves
room for 65k-token rows with remat; 16 rows per micro-batch × 2 accumulation steps = 32.
The base model is evaluated without top-k, as in the paper.
"""

from configs.paper.common import paper_config


def get_config():
    c = paper_config(
        name="llama31_8b_instruct",
        model="models/Llama-3.1-8B-Instruct",
        thinking=False,
        sample=(0.8, 20, 0.8),
        eval_ssd=(0.7, 20, 0.8),
        eval_base=(0.9, 0, 0.8),
        mesh=dict(data=1, fsdp=16, model=2),
        micro_batch=16,
    )
    c.sampling.batch_size = 8  # rows per host (4 chips) at 128k tokens each: see the compiled figures above
    return c
