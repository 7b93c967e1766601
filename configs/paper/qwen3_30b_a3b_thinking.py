"""Qwen3-30B-A3B-Thinking-2507 (mixture of experts): LCB v6 pass@1 66.1 → 68.2 in the paper. Not supported yet.

`get_config()` stops with a clear error; `recipe()` holds the paper's settings, for a TPU
v5p-64 slice (32 chips: FSDP 16 × expert/tensor parallel 2) once MoE layers exist.
"""

from configs.paper.common import paper_config
from configs.paper.moe import not_supported_yet


def recipe():
    return paper_config(
        name="qwen3_30b_a3b_thinking",
        model="models/Qwen3-30B-A3B-Thinking-2507",
        thinking=True,
        sample=(1.2, 20, 0.95),
        eval_ssd=(0.7, 20, 0.95),
        eval_base=(0.6, 20, 0.95),
        mesh=dict(data=1, fsdp=16, model=2),
        micro_batch=16,
    )


def get_config():
    return not_supported_yet("Qwen3-30B-A3B-Thinking-2507", recipe())
