"""Qwen3-4B-Thinking-2507: LCB v6 pass@1 54.5 → 57.8 in the paper.

Same slice and layout as the instruct model (TPU v5p-32, FSDP over 16 chips, remat, 16 rows
per micro-batch × 2), and the same 128K budget (prompt + response, Table 3's caption) for
sampling and evaluation: each host's 4 chips hold one tensor-parallel replica with 16 slots and
room for every slot's 128K sample (16 × 8,193 pages of 16 tokens, 72.0 GiB per chip).

Compiled for v5p:2x2x4 (`launch/compile.py --config=configs/paper/qwen3_4b_thinking.py
--topology=v5p:2x2x4`, prompts of 4,096 tokens), GiB per chip of 95, as the instruct model's:
train_step 39.16 (2.81 arguments, 36.35 temporaries); sample_prefill and eval_prefill 74.11
(73.88 arguments, of which 72.01 the donated cache, 0.23 temporaries); sample_decode and
eval_decode 74.12 (0.23 temporaries), both attending with the Pallas paged attention kernel.
"""

from configs.paper.common import KV_PAGES_PER_SAMPLE, paper_config


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
    c.sampling.model_parallel = 4  # one host's 4 chips hold one replica, see above
    c.sampling.batch_size = c.eval.batch_size = 16  # slots per host, each with room for a 128K sample
    c.sampling.kv_cache_pages = c.eval.kv_cache_pages = 16 * KV_PAGES_PER_SAMPLE  # exactly that room
    return c
