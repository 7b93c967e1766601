"""Qwen3-4B-Instruct-2507: LCB v6 pass@1 34.0 → 41.5 in the paper.

Sized for a TPU v5p-32 slice (16 chips in 4 hosts, 95 GiB HBM each): 4B parameters with float32
master weights and AdamW state are ~64 GB, split 16 ways by FSDP; one 65k-token row per chip
with rematerialised blocks (splash attention, chunked loss); 16 rows per micro-batch × 2
accumulation steps.

Sampling and evaluation use the paged continuous-batching sampler at the paper's 128K budget
(prompt + response, Table 3's caption): each host's 4 chips hold one tensor-parallel replica
(bfloat16 weights, 2 of the 8 KV heads per chip) with 16 slots, and a pool of 16 × 8,193 pages
of 16 tokens, room for every slot's longest sample (a sample is admitted only with all its
pages reserved, so a smaller pool would hold slots idle). The pool is 72.0 GiB per chip, 4.5 per
slot.

Compiled for v5p:2x2x4 (`launch/compile.py --config=configs/paper/qwen3_4b_instruct.py
--topology=v5p:2x2x4`, prompts of 4,096 tokens), GiB per chip of 95:
train_step 39.16 (2.81 arguments, 36.35 temporaries); sample_prefill and eval_prefill 74.11
(73.88 arguments, of which 72.01 the donated cache, 0.23 temporaries); sample_decode and
eval_decode 74.12 (0.23 temporaries), both attending with the Pallas paged attention kernel.
"""

from configs.paper.common import KV_PAGES_PER_SAMPLE, paper_config


def get_config():
    c = paper_config(
        name="qwen3_4b_instruct",
        model="models/Qwen3-4B-Instruct-2507",  # Local HF directory (config.json + safetensors).
        thinking=False,
        sample=(1.6, 20, 0.8),
        eval_ssd=(1.1, 20, 0.8),
        eval_base=(0.7, 20, 0.8),
        mesh=dict(data=1, fsdp=16, model=1),
        micro_batch=16,
    )
    c.sampling.model_parallel = 4  # one host's 4 chips hold one replica, see above
    c.sampling.batch_size = c.eval.batch_size = 16  # slots per host, each with room for a 128K sample
    c.sampling.kv_cache_pages = c.eval.kv_cache_pages = 16 * KV_PAGES_PER_SAMPLE  # exactly that room
    return c
