"""What the paper's three mixture-of-experts rows share: a TPU v5p-64 slice (32 chips) with the
experts split over an `expert` axis and everything else over FSDP.

Mesh: fsdp 16 × expert 2. Expert weights split 32 ways (whole experts over `expert`, their
`embed` axis over `fsdp`); attention and embeddings split 16 ways and
replicated over `expert`. Rows split over fsdp × expert = 32: one 65,536-token row per chip per
micro-batch, so the global batch of 32 is one micro-batch.
"""

from configs.paper.common import paper_config

MOE_MESH = dict(data=1, fsdp=16, expert=2, model=1)
MOE_MICRO_BATCH = 32


def moe_paper_config(**row):
    """`paper_config` for a mixture-of-experts row, on the mesh above."""
    return paper_config(mesh=MOE_MESH, micro_batch=MOE_MICRO_BATCH, **row)
