"""Llama-3.1-8B-Instruct: LCB v6 pass@1 12.7 → 16.2 in the paper.

Sized for a TPU v5p-64 slice (32 chips in 8 hosts, 95 GiB HBM each): 8B parameters with float32
master weights and AdamW state are ~128 GB, FSDP over 16 chips × tensor parallel 2 (its 8 KV
heads split in two) leaves room for 65k-token rows with remat; 16 rows per micro-batch × 2
accumulation steps = 32.

Sampling and evaluation use the paged continuous-batching sampler at the paper's 128K budget
(prompt + response, Table 3's caption; also the model's context): each host's 4 chips hold one
tensor-parallel replica (bfloat16 weights, 2 of the 8 KV heads per chip) with 16 slots, and a
pool of 16 × 8,193 pages of 16 tokens, room for every slot's longest sample (a sample is admitted
only with all its pages reserved, so a smaller pool would hold slots idle): 64.0 GiB per chip.

Compiled for v5p:2x4x4 (`launch/compile.py --config=configs/paper/llama31_8b_instruct.py
--topology=v5p:2x4x4`, prompts of 4,096 tokens), GiB per chip of 95: train_step 38.24
(2.81 arguments, 35.43 temporaries); sample_prefill and eval_prefill 67.85 (67.50 arguments, of
which 64.01 the donated cache, 0.35 temporaries); sample_decode and eval_decode 68.12 (0.37
temporaries), both attending with the Pallas paged attention kernel. The base model is evaluated without top-k, as in the paper.
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
    c.sampling.kv_cache_pages = c.eval.kv_cache_pages = 16 * KV_PAGES_PER_SAMPLE  # exactly that room
    return c
