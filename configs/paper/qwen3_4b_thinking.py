"""Qwen3-4B-Thinking-2507: LCB v6 pass@1 54.5 → 57.8 in the paper.

Same slice and layout as the instruct model (TPU v5p-32, FSDP over 16 chips, remat, 16 rows
per micro-batch × 2); thinking traces are longer, so sampling gets the 32k budget.
"""

from configs.paper.common import paper_config


def get_config():
    c = paper_config(
        name="qwen3_4b_thinking",
        model="models/Qwen3-4B-Thinking-2507",
        thinking=True,
        sample=(1.1, 20, 0.95),
        eval_ssd=(0.7, 20, 0.95),
        eval_base=(0.6, 20, 0.95),
        mesh=dict(data=1, fsdp=16, model=1),
        micro_batch=16,
    )
    c.sampling.batch_size = 8  # rows per host (4 chips) at 128k tokens each: see the compiled figures above
    return c
