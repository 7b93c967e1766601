"""gpt-oss-20b (mixture of experts): LCB v6 pass@1 69.1 → 74.4 in the paper. Not supported yet.

`get_config()` stops with a clear error; `recipe()` holds the paper's settings, for a TPU
v5p-64 slice (32 chips: FSDP 16 × expert/tensor parallel 2) once MoE layers exist.
"""

from ml_collections import ConfigDict

from configs.paper.common import paper_config
from configs.paper.moe import not_supported_yet

# The paper runs GPT-OSS at reasoning effort "high" (its chat template's `reasoning_effort`),
# for sampling SSD data, for the training rows rendered from it, and for evaluation.
REASONING = {"reasoning_effort": "high"}


def recipe():
    c = paper_config(
        name="gpt_oss_20b",
        model="models/gpt-oss-20b",
        thinking=True,
        sample=(1.2, 0, 1.0),
        eval_ssd=(1.0, 20, 0.95),
        eval_base=(1.0, 0, 1.0),
        mesh=dict(data=1, fsdp=16, model=2),
        micro_batch=16,
    )
    c.prompts.chat_template_kwargs = ConfigDict(REASONING)
    c.eval.chat_template_kwargs = ConfigDict(REASONING)
    return c


def get_config():
    return not_supported_yet("gpt-oss-20b", recipe())
