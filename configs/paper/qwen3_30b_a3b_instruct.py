"""Qwen3-30B-A3B-Instruct-2507 (mixture of experts): LCB v6 pass@1 42.4 → 55.3 in the paper.

128 experts, top-8 (renormalised), 48 layers. Sized for a TPU v5p-64 slice (32 chips) on the
mixture-of-experts mesh of `configs/paper/moe.py` (fsdp 16 × expert 2; one 65k-token row per chip).
Compiled for v5p:2x4x4 (`launch/compile.py --programs=train_step`): the training step needs
79.63 GiB per chip of 95 (arguments 11.20, temporaries 68.43), 674 TFLOP per chip per step.
Sampling and evaluation run on each host's 4 chips, the experts split 4 ways, bf16 weights
(15.8 GiB per chip) and 128K-token samples (`launch/compile.py --max_total_tokens=131072`,
4,096-token prompts): stage 1 decodes 4 rows per chip (16 per host) from a pool of 4 full
samples (48.0 GiB), prefill 69.43 and decode 69.95 GiB per chip; evaluation decodes 3 rows per
chip (12 per host) from a pool of 3 full samples (36.0 GiB), prefill 57.43 and decode 57.96 GiB
per chip; attention is the Pallas paged attention kernel.
"""

from configs.paper.moe import moe_paper_config


def get_config():
    return moe_paper_config(
        name="qwen3_30b_a3b_instruct",
        model="models/Qwen3-30B-A3B-Instruct-2507",  # Local HF directory (config.json + safetensors).
        thinking=False,
        sample=(1.6, 20, 0.8),
        eval_ssd=(0.9, 20, 0.8),
        sample_slots=4,
        eval_slots=3,
        eval_base=(0.7, 20, 0.8),
    )
