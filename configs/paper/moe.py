"""What the paper's three mixture-of-experts rows share: a TPU v5p-64 slice (32 chips) with the
experts split over an `expert` axis and everything else over FSDP for training, and each host's
4 chips splitting the experts for sampling and evaluation.

Training mesh: fsdp 16 × expert 2. Expert weights split 32 ways (whole experts over `expert`,
their `embed` axis over `fsdp`); attention and embeddings split 16 ways and replicated over
`expert`. Rows split over fsdp × expert = 32: one 65,536-token row per chip per micro-batch, so
the global batch of 32 is one micro-batch.

Sampling and evaluation (each host on its own 4 chips): `expert_parallel` 4, so each chip holds a
quarter of the experts (whole experts) in the compute dtype, a copy of everything else, and its
own cache replica with `slots` rows of up to 128K tokens (Table 3's caption: prompt + response).
Routing is dropless: no token is ever dropped for lack of expert capacity. Each page pool
holds exactly `slots` full-length samples per chip (`sampling.kv_cache_pages`,
`eval.kv_cache_pages`). gpt-oss-20b's evaluator figures were compiled with the sampler's default
pool instead (every slot's longest sample, rounded up to a power of two: 65,536 pages for 7
slots), which is larger, so they bound the exact pool's from above.

Without the expert split, Qwen3-30B-A3B's sample prefill on a host did not fit: 332 GiB per chip
(weights 57 GiB replicated on every chip, 8 slots' cache 99 GiB, and 176 GiB of temporaries; a 4-layer compile's buffer assignment shows them
to be mostly the expert weights, copied once per cache replica by the grouped matmul's replica loop).
"""

from configs.paper.common import MAX_SEQUENCE_TOKENS, paper_config
from ssd_jax.sampling.pages import own_pages, prefix_pages

MOE_MESH = dict(data=1, fsdp=16, expert=2, model=1)
MOE_MICRO_BATCH = 32
HOST_CHIPS = 4  # a TPU v5p host
PAGE_SIZE = 16
PROMPT_TOKENS = 4096  # the prompt length the fit is compiled for (`launch/compile.py --max_prompt_tokens`)
# KV pages of one sample that fills the 128K budget (any prompt length needs about as many).
SAMPLE_PAGES = (prefix_pages(PROMPT_TOKENS, PAGE_SIZE)
                + own_pages(PROMPT_TOKENS, MAX_SEQUENCE_TOKENS - PROMPT_TOKENS, PAGE_SIZE))


def moe_paper_config(*, sample_slots: int, eval_slots: int, **row):
    """`paper_config` for a mixture-of-experts row, on the meshes above, with `sample_slots` /
    `eval_slots` rows decoded at once per chip when sampling / evaluating."""
    c = paper_config(mesh=MOE_MESH, micro_batch=MOE_MICRO_BATCH, **row)
    c.sampling.expert_parallel = HOST_CHIPS  # eval.expert_parallel 0: the same
    c.sampling.page_size = PAGE_SIZE
    c.sampling.batch_size = HOST_CHIPS * sample_slots
    c.sampling.kv_cache_pages = sample_slots * SAMPLE_PAGES
    c.eval.page_size = PAGE_SIZE
    c.eval.batch_size = HOST_CHIPS * eval_slots
    c.eval.kv_cache_pages = eval_slots * SAMPLE_PAGES
    return c
