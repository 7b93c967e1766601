"""Qwen3-4B-Instruct-2507: LCB v6 pass@1 34.0 → 41.5 in the paper.

Sized for a TPU v5p-32 slice (16 chips, 95 GiB HBM each): 4B parameters with float32 master
weights and AdamW state are ~64 GB, split 16 ways by FSDP; one 65k-token row per chip with
rematerialised blocks (splash attention, chunked loss); 16 rows per micro-batch × 2
accumulation steps. Compiled for v5p:2x2x4 (`launch/compile.py`): the training step needs
39.2 GiB per chip (2.8 arguments, 36.4 temporaries). Sampling decodes 4 rows per host of 128k
tokens (4,096-token prompts) with the host's 4 chips as one tensor-parallel replica: 41.8 GiB
per chip (Llama-3.1-8B's decode at 8 rows per host without tensor parallelism was refused by
the compiler: 109 GiB of temporaries). Evaluation decodes 32 rows of 128k tokens on the training
mesh: 57.9 GiB per chip.
"""

from configs.paper.common import paper_config


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
    c.sampling.batch_size = 4  # rows per host at 128k tokens each, see above
    c.sampling.model_parallel = 4  # one host's 4 chips hold one replica
    return c
