"""Attention over a paged KV cache: the pure-JAX gather path against NumPy, and the TPU Pallas
kernel the sampler runs on TPU (`ssd_jax.kernels.ragged_paged_attention`, the same code run in
TPU interpret mode on CPU) against the pure-JAX path, on ragged page tables (sequences of
different lengths in scattered, shuffled pages), in float32 and bfloat16. The bfloat16 tolerance
is a few bfloat16 roundings: the two paths round the softmax weights at different points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas import tpu as pltpu
from jax.sharding import NamedSharding, PartitionSpec

from ssd_jax.compiled_fit import topology_devices
from ssd_jax.kernels import paged
from ssd_jax.kernels.ragged_paged_attention import tuned_block_sizes
from ssd_jax.models.kv_cache import pallas_paged_attention, paged_attention
from ssd_jax.parallel import make_mesh
from tpu_topology import requires_libtpu

PAGE, KV_HEADS, GROUP, HEAD_DIM, PAGES_PER_SEQ = 16, 2, 2, 128, 4


def ragged_case(kv_lens, q_lens, seed=0, kv_heads=KV_HEADS, group=GROUP):
    """Random pages, each sequence in its own shuffled pages; queries padded to the longest q_len."""
    rng = np.random.default_rng(seed)
    num_seqs, max_q = len(kv_lens), max(q_lens)
    num_pages = 1 + num_seqs * PAGES_PER_SEQ
    pages = rng.standard_normal((num_pages, PAGE, 2 * kv_heads, HEAD_DIM)).astype(np.float32)
    table = (1 + rng.permutation(num_seqs * PAGES_PER_SEQ)).reshape(num_seqs, PAGES_PER_SEQ).astype(np.int32)
    q = rng.standard_normal((num_seqs, max_q, kv_heads * group, HEAD_DIM)).astype(np.float32)
    return q, pages, table, np.asarray(kv_lens, np.int32), np.asarray(q_lens, np.int32)


def numpy_attention(q, pages, table, kv_lens, q_lens):
    out = np.zeros_like(q, dtype=np.float64)
    for i, (kv_len, q_len) in enumerate(zip(kv_lens, q_lens)):
        tokens = pages[table[i]].reshape(-1, 2 * KV_HEADS, HEAD_DIM)[:kv_len]
        for m in range(q_len):
            position = kv_len - q_len + m
            for h in range(KV_HEADS * GROUP):
                keys, values = tokens[: position + 1, 2 * (h // GROUP)], tokens[: position + 1, 2 * (h // GROUP) + 1]
                scores = keys @ q[i, m, h] / np.sqrt(HEAD_DIM)
                weights = np.exp(scores - scores.max())
                out[i, m, h] = weights @ values / weights.sum()
    return out


def test_gather_path_matches_numpy():
    case = ragged_case(kv_lens=[1, 17, 64, 40], q_lens=[1, 5, 3, 1])
    got = np.asarray(jax.jit(paged_attention)(*case))
    expected = numpy_attention(*case)
    for i, q_len in enumerate(case[4]):
        np.testing.assert_allclose(got[i, :q_len], expected[i, :q_len], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("kv_lens, q_lens, kv_heads, group, dtype, atol", [
    # decode: one query per slot, ragged lengths (1 token, page boundaries, a full table)
    ([1, 17, 64, 33, 5], [1, 1, 1, 1, 1], 2, 2, "float32", 2e-5),
    ([1, 17, 64, 33, 5], [1, 1, 1, 1, 1], 2, 2, "bfloat16", 3e-2),
    # a prefill chunk: 20 queries after 30 cached tokens, in three query blocks
    ([50], [20], 2, 2, "float32", 2e-5),
    ([50], [20], 2, 2, "bfloat16", 3e-2),
    # 8 kv heads in float32: the kernel splits them into two head blocks
    ([9, 40], [1, 1], 8, 1, "float32", 2e-5),
])
def test_pallas_kernel_in_interpret_mode_matches_the_gather_path(kv_lens, q_lens, kv_heads, group, dtype, atol):
    q, pages, table, kv, ql = (jnp.asarray(x) for x in ragged_case(kv_lens, q_lens, seed=len(kv_lens),
                                                                    kv_heads=kv_heads, group=group))
    q, pages = q.astype(dtype), pages.astype(dtype)
    reference = np.asarray(paged_attention(q, pages, table, kv, ql).astype(jnp.float32))
    with pltpu.force_tpu_interpret_mode():
        kernel = np.asarray(pallas_paged_attention(q, pages, table, kv, ql, block_sizes=(2, 8)).astype(jnp.float32))
    for i, q_len in enumerate(q_lens):
        np.testing.assert_allclose(kernel[i, :q_len], reference[i, :q_len], atol=atol, rtol=0)


@pytest.mark.parametrize("heads, kv_heads, head_dim, reason", [
    (32, 8, 128, None),  # Qwen3-4B
    (9, 3, 64, "head_dim 64 is not a multiple of 128"),  # SmolLM2-135M
    (6, 3, 128, "3 KV heads per chip"),  # 6 combined heads do not tile
])
def test_shapes_the_kernel_cannot_serve_take_the_gather_path(heads, kv_heads, head_dim, reason, caplog):
    """Compiling for v5e, the kernel fails on head_dim 64 and on 3 KV heads of 128; those calls
    warn and attend with the gather path (the same result, by construction)."""
    q = jnp.zeros((4, 1, heads, head_dim), jnp.bfloat16)
    pages = jnp.zeros((9, PAGE, 2 * kv_heads, head_dim), jnp.bfloat16)
    got = paged.unsupported_reason(q, pages)
    assert got is None if reason is None else reason in got
    if reason:
        table, lens = jnp.arange(1, 9, dtype=jnp.int32).reshape(4, 2), jnp.ones((4,), jnp.int32)
        with caplog.at_level("WARNING"):
            out = pallas_paged_attention(q + 1, pages + 1, table, lens, lens)
        np.testing.assert_array_equal(out, paged_attention(q + 1, pages + 1, table, lens, lens))
        assert "using the gather path" in caplog.text and reason in caplog.text


def _replicas_on_mesh(mesh, q, pages, table, kv_lens, q_lens, block_sizes):
    """The kernel as the sampler runs it: vmapped over cache replicas (split over `data`), heads
    split over `model`, under jit with the mesh in context."""
    heads = NamedSharding(mesh, PartitionSpec("data", None, None, "model", None))
    rows = NamedSharding(mesh, PartitionSpec("data"))

    def attend(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return jax.vmap(lambda *a: pallas_paged_attention(*a, block_sizes=block_sizes))(*args)

    return jax.jit(attend, in_shardings=(heads, heads, rows, rows, rows), out_shardings=heads)


def test_pallas_kernel_on_a_mesh_matches_the_gather_path():
    """Two cache replicas over `data` and the KV heads over `model` (4 CPU devices): each device
    runs the kernel on its own replica and heads (XLA cannot partition a Mosaic kernel)."""
    mesh = make_mesh(data=2, fsdp=1, expert=1, model=2, devices=jax.devices()[:4])
    replicas = [ragged_case([1, 17, 40], [1, 1, 1], seed=seed) for seed in range(2)]
    q, pages, table, kv, ql = (jnp.asarray(np.stack(x)) for x in zip(*replicas))
    reference = np.asarray(jax.vmap(paged_attention)(q, pages, table, kv, ql))
    with pltpu.force_tpu_interpret_mode():
        kernel = np.asarray(_replicas_on_mesh(mesh, q, pages, table, kv, ql, block_sizes=(2, 8))(q, pages, table, kv, ql))
    np.testing.assert_allclose(kernel, reference, atol=2e-5, rtol=0)


@requires_libtpu
@pytest.mark.parametrize("topology, shape, page, block_sizes", [
    ("v5e:2x2", "decode", 16, (8, 16)),
    # 2 x 8 pages of 256 tokens are 16 MiB of buffers: more than Mosaic's default VMEM limit
    ("v5p:2x2x1", "prefill", 256, (8, 32)),
])
def test_pallas_kernel_compiles_for_a_tpu_topology(topology, shape, page, block_sizes):
    """The kernel path at a Qwen3-4B-like layer (32 query heads over 8 KV heads of 128, bfloat16),
    compiled by libtpu for one chip of a real TPU topology: Mosaic compiles the vendored kernel."""
    mesh = jax.sharding.Mesh(topology_devices(topology)[:1], ("chip",))
    num_seqs, num_queries = (16, 1) if shape == "decode" else (1, 256)
    shapes = [((num_seqs, num_queries, 32, 128), jnp.bfloat16), ((1024, page, 16, 128), jnp.bfloat16),
              ((num_seqs, 2048 // page), jnp.int32), ((num_seqs,), jnp.int32), ((num_seqs,), jnp.int32)]
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    args = [jax.ShapeDtypeStruct(s, dtype, sharding=replicated) for s, dtype in shapes]
    attend = jax.jit(lambda *a: pallas_paged_attention(*a, block_sizes=block_sizes))
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):  # the chip the kernel is lowered for
        compiled = attend.lower(*args).compile()
    kernel_calls = [line for line in compiled.as_text().splitlines() if "custom-call(" in line]
    assert len(kernel_calls) == 1 and "ragged_paged_attention_kernel" in kernel_calls[0], kernel_calls
    assert compiled.memory_analysis().output_size_in_bytes == num_seqs * num_queries * 32 * 128 * 2


@requires_libtpu
def test_pallas_kernel_compiles_on_a_multi_chip_topology():
    """The sampler's layout on 4 v5p chips (2 cache replicas × 2-way split heads): one kernel call
    per chip on its own shards, nothing gathered across chips."""
    mesh = make_mesh(data=2, fsdp=1, expert=1, model=2, devices=topology_devices("v5p:2x2x1"))
    shapes = [((2, 16, 1, 32, 128), jnp.bfloat16), ((2, 1024, 16, 16, 128), jnp.bfloat16),
              ((2, 16, 32), jnp.int32), ((2, 16), jnp.int32), ((2, 16), jnp.int32)]
    args = [jax.ShapeDtypeStruct(s, dtype) for s, dtype in shapes]
    compiled = _replicas_on_mesh(mesh, *args, block_sizes=(8, 16)).lower(*args).compile()
    hlo = compiled.as_text()
    kernel_calls = [line for line in hlo.splitlines() if "custom-call(" in line]
    assert len(kernel_calls) == 1 and "ragged_paged_attention_kernel" in kernel_calls[0], kernel_calls
    assert "all-gather" not in hlo and "all-reduce" not in hlo
    pages_per_chip = 1024 * 16 * 8 * 128 * 2  # one replica's pages, half its combined KV heads, bfloat16
    assert pages_per_chip <= compiled.memory_analysis().argument_size_in_bytes < 1.05 * pages_per_chip


@requires_libtpu
def test_block_sizes_are_tuned_for_the_chip_being_compiled_for():
    """Without block sizes, the kernel takes JAX's table for the chip of the mesh in context (a TPU
    topology compiled for on this CPU host); with no TPU to name, it asks for them."""
    # A 1024-token prefill of 32 query heads over 8 KV heads of 128, 8 pages of 16 per sequence:
    # JAX 0.10.2's table holds (8, 32) for TPU v5 chips and (4, 32) for TPU v6.
    key = ("bfloat16", "bfloat16", 32, 8, 128, 16, 1024, 8)
    for topology, expected in (("v5e:2x2", (8, 32)), ("v5p:2x2x1", (8, 32)), ("v6e:2x2", (4, 32))):
        mesh = jax.sharding.Mesh(topology_devices(topology)[:1], ("chip",))
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            assert tuned_block_sizes(*key) == expected, topology
    with pytest.raises(ValueError, match="pass num_kv_pages_per_block and num_queries_per_block"):
        tuned_block_sizes(*key)
