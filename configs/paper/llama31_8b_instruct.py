"""Llama-3.1-8B-Instruct: LCB v6 pass@1 12.7 → 16.2 in the paper.

Sized for a TPU v5p-64 slice (32 chips): 8B parameters with float32 master weights and AdamW
state are ~128 GB, FSDP over 16 chips × tensor parallel 2 (its 8 KV heads split in two) leaves
room for 65k-token rows with remat; 16 rows per micro-batch × 2 accumulation steps = 32.
Compiled for v5p:2x4x4 (`launch/compile.py`): the training step needs 38.2 GiB per chip
(2.8 arguments, 35.4 temporaries). Sampling at 128k tokens per row (4,096-token prompts): 8 rows
per host without tensor parallelism was refused by the compiler (109 GiB of temporaries), so
each host decodes 4 rows as one 4-way tensor-parallel replica: 43.2 GiB per chip.
Evaluation decodes 32 rows of 128k tokens on the training mesh: 34.7 GiB per chip.
The base model is evaluated without top-k, as in the paper.
"""

from configs.paper.common import KV_PAGES_PER_SAMPLE, paper_config


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
    c.sampling.model_parallel = 4  # one host's 4 chips hold one replica, see above
    c.sampling.batch_size = c.eval.batch_size = 16  # slots per host, each with room for a 128K sample
    c.sampling.kv_cache_pages = 16 * KV_PAGES_PER_SAMPLE  # exactly that room (the evaluator's default pool)
    return c
