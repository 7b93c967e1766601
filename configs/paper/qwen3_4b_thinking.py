"""Qwen3-4B-Thinking-2507: LCB v6 pass@1 54.5 → 57.8 in the paper.

Same slice and layout as the instruct model (TPU v5p-32, FSDP over 16 chips, remat, 16 rows
per micro-batch × 2, 4 rows per host sampled by a 4-way tensor-parallel replica); thinking traces
are longer, so sampling gets the 32k budget. Its compiled programs are the instruct model's
(same architecture, mesh and lengths): see that config for the figures.
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
    c.sampling.kv_cache_pages = 16 * KV_PAGES_PER_SAMPLE  # exactly that room (the evaluator's default pool)
    return c
