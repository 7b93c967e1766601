"""Expert parallelism on 8 fake devices: a mixture-of-experts model's logits and one training
step on meshes with an `expert` axis equal the single-device results."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hf_tiny import hf_logits, load_ours, save_tiny

from ssd_jax.models import ModelConfig
from ssd_jax.parallel import make_mesh, single_device_mesh
from ssd_jax.training import state
from ssd_jax.training.step import make_train_step

MESHES = {"data2_expert4": dict(data=2, fsdp=1, expert=4, model=1),
          "data2_expert2_model2": dict(data=2, fsdp=1, expert=2, model=2),
          "fsdp2_expert2_model2": dict(data=1, fsdp=2, expert=2, model=2)}
ROWS, LENGTH = 8, 16


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("qwen3_moe"))
    return directory, save_tiny("qwen3_moe", directory)


def _load(directory, mesh):
    return load_ours(directory, mesh, attention="reference")


def _logits(model, mesh, tokens):
    @nnx.jit
    def forward(model, tokens):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):  # expert-parallel shard_map
            return model(tokens)

    return np.asarray(forward(model, jnp.asarray(tokens)))


def _batch():
    rng = np.random.RandomState(1)
    tokens = rng.randint(0, 160, (1, ROWS, LENGTH + 1)).astype(np.int32)
    segments = np.ones((1, ROWS, LENGTH), np.int32)
    segments[0, ::3, 11:] = 0  # some padding, left out of the router loss
    return {"inputs": tokens[..., :-1], "targets": tokens[..., 1:], "segment_ids": segments,
            "positions": np.broadcast_to(np.arange(LENGTH, dtype=np.int32), (1, ROWS, LENGTH)).copy(),
            "weights": (segments > 0).astype(np.float32)}


def _one_step(directory, mesh):
    model = _load(directory, mesh)
    graphdef, params = state.split_params(model)
    optimizer = optax.sgd(0.1)  # updates proportional to gradients: a comparison that Adam's ±lr cannot blur
    param_shardings = state.param_shardings(model, mesh)
    opt_shardings = state.opt_state_shardings(optimizer, params, param_shardings, mesh)
    opt_state = state.init_opt_state(optimizer, params, opt_shardings)
    batch = _batch()
    batch_shardings = state.batch_shardings({k: v.shape for k, v in batch.items()}, mesh)
    step = make_train_step(graphdef, optimizer, param_shardings, opt_shardings, batch_shardings)
    before = jax.tree.map(np.array, params)  # copies: the step donates `params`
    params, _, metrics = step(params, opt_state, state.put_batch(batch, batch_shardings))
    return jax.device_get(metrics), jax.tree.map(lambda a, b: np.asarray(a) - b, params, before), param_shardings


@pytest.fixture(scope="module")
def single(tiny):
    directory, _ = tiny
    return _one_step(directory, single_device_mesh())


@pytest.mark.parametrize("axes", sorted(MESHES))
def test_logits_match_single_device_and_transformers(axes, tiny):
    directory, reference = tiny
    mesh = make_mesh(**MESHES[axes])
    model = _load(directory, mesh)
    assert model.blocks.expert_gate[...].sharding.spec[1] == "expert", "experts should be split over `expert`"
    tokens = np.random.RandomState(0).randint(0, 160, (ROWS, 12)).astype(np.int32)
    ours = _logits(model, mesh, tokens)
    alone = _logits(_load(directory, single_device_mesh()), single_device_mesh(), tokens)
    print(f"{axes}: largest logit difference to one device {np.abs(ours - alone).max():.2e}, "
          f"to transformers {np.abs(ours - hf_logits(reference, tokens)).max():.2e}")
    np.testing.assert_allclose(ours, alone, atol=2e-5, rtol=0)
    np.testing.assert_allclose(ours, hf_logits(reference, tokens), atol=1e-4, rtol=0)


def _assert_same_step(metrics, updates, want_metrics, want_updates):
    """One training step's metrics and parameter updates equal the single-device step's."""
    for name in ("loss", "router_aux_loss", "grad_norm"):
        np.testing.assert_allclose(metrics[name], want_metrics[name], rtol=2e-5, err_msg=name)
    flat_want = dict(jax.tree_util.tree_leaves_with_path(want_updates))
    for path, update in jax.tree_util.tree_leaves_with_path(updates):
        want = flat_want[path]
        np.testing.assert_allclose(update, want, rtol=1e-3, atol=1e-4 * np.abs(want).max(), err_msg=str(path))


@pytest.mark.parametrize("axes", ["data2_expert4", "data2_expert2_model2"])
def test_training_step_matches_single_device(axes, tiny, single):
    directory, _ = tiny
    metrics, updates, shardings = _one_step(directory, make_mesh(**MESHES[axes]))
    want_metrics, want_updates, _ = single
    assert want_metrics["router_aux_loss"] > 0.5  # E · Σ f·P is about 1 for a near-uniform router
    _assert_same_step(metrics, updates, want_metrics, want_updates)
    assert shardings["blocks"]["expert_down"].spec[1] == "expert"


def test_dense_and_sparse_layers_on_an_expert_mesh_match_one_device(tmp_path):
    """Dense blocks among sparse ones (`mlp_only_layers`): logits and one training step on
    data 2 × expert 2 × model 2 equal one device's (and the logits transformers')."""
    directory = str(tmp_path)
    reference = save_tiny("qwen3_moe_mixed", directory)
    mesh = make_mesh(**MESHES["data2_expert2_model2"])
    model = _load(directory, mesh)
    assert model.blocks.expert_gate[...].shape[0] == 2 and model.blocks.gate_proj[...].shape[0] == 2
    tokens = np.random.RandomState(0).randint(0, 160, (ROWS, 12)).astype(np.int32)
    ours = _logits(model, mesh, tokens)
    print(f"mixed layers: largest logit difference to transformers {np.abs(ours - hf_logits(reference, tokens)).max():.2e}")
    np.testing.assert_allclose(ours, _logits(_load(directory, single_device_mesh()), single_device_mesh(), tokens),
                               atol=2e-5, rtol=0)
    np.testing.assert_allclose(ours, hf_logits(reference, tokens), atol=1e-4, rtol=0)
    metrics, updates, _ = _one_step(directory, mesh)
    want_metrics, want_updates, _ = _one_step(directory, single_device_mesh())
    _assert_same_step(metrics, updates, want_metrics, want_updates)


def test_sampler_on_a_data_expert_mesh_draws_the_single_device_tokens():
    """A gpt-oss-style model (sinks, a 6-token window shorter than the prompts, experts) in the
    real sampler: greedy and sampled rows on data 2 × expert 4 equal one device's."""
    from ssd_jax.checkpoints import tiny
    from ssd_jax.checkpoints.load import LoadedModel
    from ssd_jax.models.transformer import Transformer
    from ssd_jax.parallel import shard_model
    from ssd_jax.sampling import Sampler, SampleRequest

    config = ModelConfig(family="gpt_oss", vocab_size=264, hidden_size=64, intermediate_size=32, num_layers=2,
                         num_heads=4, num_kv_heads=2, head_dim=16, num_experts=8, num_experts_per_tok=2,
                         moe_intermediate_size=32, attention_bias=True, attention_sinks=True, layer_windows=(6, 0),
                         swiglu_limit=7.0, eos_token_ids=(258,))

    def sample(mesh):
        model = shard_model(Transformer(config, rngs=nnx.Rngs(3)), mesh)
        loaded = LoadedModel(model, config, tiny.tiny_tokenizer(), tiny.tiny_chat_template(), (258,), "tiny-moe", mesh)
        prompts = [loaded.chat_template.render([{"role": "user", "content": f"write function {i}"}]) for i in range(4)]
        requests = [SampleRequest(f"g{i}", 0, p, 0.0, 0, 1.0) for i, p in enumerate(prompts)]
        requests += [SampleRequest(f"s{i}", 0, p, 1.0, 20, 0.9) for i, p in enumerate(prompts)]
        sampler = Sampler(loaded, max_new_tokens=8, batch_size=8, seed=5, mesh=mesh)
        return sampler.generate(requests, progress=False)

    alone = sample(single_device_mesh())
    for ours, reference in zip(sample(make_mesh(**MESHES["data2_expert4"])), alone):
        assert ours.token_ids == reference.token_ids, ours.prompt_id
        np.testing.assert_allclose(ours.logprobs, reference.logprobs, atol=1e-5)
