"""gpt-oss-20b (mixture of experts): LCB v6 pass@1 69.1 → 74.4 in the paper.

32 experts, top-4, 24 layers alternating 128-token sliding-window and full attention with
learned attention sinks; its MXFP4 expert weights are dequantised on import (exactly) into
`param_dtype`. Sized for a TPU v5p-64 slice (32 chips) on the mixture-of-experts mesh of
`configs/paper/moe.py` (fsdp 16 × expert 2; one 65k-token row per chip). Compiled for
v5p:2x4x4 (`launch/compile.py --programs=train_step`, blockwise attention with sinks and
windows): the training step needs 63.30 GiB per chip of 95 (arguments 8.33, temporaries 54.97).
Sampling and evaluation run on each host's 4 chips, the experts split 4 ways, bf16 weights
(11.4 GiB per chip) and 128K-token samples (`launch/compile.py --max_total_tokens=131072`,
4,096-token prompts): stage 1 decodes 6 rows per chip (24 per host) from a pool of 6 full
samples (36.1 GiB), prefill 64.05 and decode 76.45 GiB per chip (8 rows compiled to 94.27: too
close to the 95); evaluation decodes 7 rows per chip (28 per host; the default pool rounds up to
48.1 GiB), prefill 79.03 and decode 92.45 GiB per chip.
"""

from ml_collections import ConfigDict

from configs.paper.moe import moe_paper_config

# The paper runs GPT-OSS at reasoning effort "high" (its chat template's `reasoning_effort`),
# for sampling SSD data, for the training rows rendered from it, and for evaluation.
REASONING = {"reasoning_effort": "high"}


def get_config():
    c = moe_paper_config(
        name="gpt_oss_20b",
        model="models/gpt-oss-20b",  # Local HF directory (config.json + safetensors).
        thinking=True,
        sample=(1.2, 0, 1.0),
        eval_ssd=(1.0, 20, 0.95),
        sample_slots=6,
        eval_slots=7,
        eval_base=(1.0, 0, 1.0),
    )
    c.prompts.chat_template_kwargs = ConfigDict(REASONING)
    c.eval.chat_template_kwargs = ConfigDict(REASONING)
    return c
