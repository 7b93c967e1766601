"""The sampler on 8 (fake CPU) devices: every data × model mesh draws the single-device tokens.

Sharding changes the order of float sums (row-parallel projections end in an all-reduce), so
logits may differ in the last bits; a token could only change at a near-tie (greedy) or with a
uniform within ~1e-7 of a cumulative boundary (sampled). Log-probs are compared to 1e-5.
"""

import jax
import numpy as np
import pytest

from ssd_jax.checkpoints.load import load_model
from ssd_jax.parallel import make_mesh
from ssd_jax.sampling import Sampler, SampleRequest

NEW_TOKENS, BATCH = 8, 8


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny-random")


@pytest.fixture(scope="module")
def requests(loaded):
    def prompt(i):
        return loaded.chat_template.render([{"role": "user", "content": f"write function number {i}"}])

    greedy = [SampleRequest(f"g{i}", 0, prompt(i), 0.0, 0, 1.0) for i in range(4)]
    sampled = [SampleRequest(f"s{i}", i % 2, prompt(i), 1.1, 20, 0.9) for i in range(4)]
    return greedy + sampled


@pytest.fixture(scope="module")
def single_device(loaded, requests):
    return Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=BATCH, seed=5).generate(requests, progress=False)


@pytest.mark.parametrize("data, model", [(8, 1), (4, 2), (2, 4), (1, 8)])
def test_every_mesh_draws_the_single_device_tokens(loaded, requests, single_device, data, model):
    mesh = make_mesh(data, 1, model)
    sampler = Sampler(loaded, max_new_tokens=NEW_TOKENS, batch_size=BATCH, seed=5, mesh=mesh)
    for ours, reference in zip(sampler.generate(requests, progress=False), single_device):
        assert ours.token_ids == reference.token_ids, f"{ours.prompt_id} differs on mesh {data}×{model}"
        assert ours.finish_reason == reference.finish_reason
        np.testing.assert_allclose(ours.logprobs, reference.logprobs, atol=1e-5)

    kv_heads_split = loaded.config.num_kv_heads % model == 0
    expected = ("data" if data > 1 else None, None, None, "model" if kv_heads_split and model > 1 else None, None)
    for layer in sampler.engine.cache.pages:
        spec = tuple(layer.sharding.spec)
        assert spec + (None,) * (5 - len(spec)) == expected, "pages: replicas over `data`, KV heads over `model`"
    gate = sampler.engine.params["blocks"]["gate_proj"]
    assert gate.sharding.spec[2] == ("model" if model > 1 else None), "mlp weights split over `model`"
    assert len(jax.tree.leaves(sampler.engine.params)[0].sharding.device_set) == 8


def test_compile_targets_update_the_paged_cache_in_place(loaded):
    """`sampler_compile_targets` compiles on a 4 × 2 mesh, and the compiled decode step aliases its
    whole cache argument to its output (donated, updated in place: no second copy of the pages)."""
    from ssd_jax.sampling.aot import sampler_compile_targets

    targets = sampler_compile_targets(loaded.config, mesh=make_mesh(4, 1, 2), dtype="float32", batch_size=8,
                                      max_prompt_tokens=40, max_new_tokens=24)
    for name, (fn, args) in targets.items():
        cache = args[2]
        per_device = sum(np.prod(layer.sharding.shard_shape(layer.shape)) * 4 for layer in cache.pages)
        assert fn.lower(*args).compile().memory_analysis().alias_size_in_bytes == per_device, name
