"""The loss and the training step on the tiny model: masking, packing, optimizer, learning."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sample_shards import write_code_shards
from settings_from_config import optimizer_settings

import ssd_jax
from ssd_jax.data.examples import ExampleTokenizer, next_token_example
from ssd_jax.data.records import read_records
from ssd_jax.training import state
from ssd_jax.training.optimizer import (
    clip_by_global_norm,
    learning_rate_schedule,
    make_optimizer,
    weight_decay_mask,
)
from ssd_jax.training.step import loss_and_grads

ROWS, LENGTH = 4, 512


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    loaded = ssd_jax.load_model("tiny-random")  # one device
    examples = ExampleTokenizer(loaded.tokenizer, loaded.chat_template)
    records = read_records(write_code_shards(tmp_path_factory.mktemp("samples"), 4))
    rows = [next_token_example(*examples.tokens_and_mask(r.messages, r.completion)) for r in records]
    graphdef, params = state.split_params(loaded.model)
    return loaded, graphdef, params, rows


def _batch(rows_of_examples: list[list[dict]]) -> dict[str, np.ndarray]:
    """`[1, ROWS, LENGTH]` arrays; each inner list is packed into one row (segments 1, 2, ...)."""
    names = ("inputs", "targets", "weights", "segment_ids", "positions")
    batch = {name: np.zeros((1, ROWS, LENGTH), np.float32 if name == "weights" else np.int32) for name in names}
    for r, row in enumerate(rows_of_examples):
        start = 0
        for segment, example in enumerate(row, start=1):
            n = len(example["inputs"])
            for name in ("inputs", "targets", "weights"):
                batch[name][0, r, start:start + n] = example[name]
            batch["segment_ids"][0, r, start:start + n] = segment
            batch["positions"][0, r, start:start + n] = np.arange(n)
            start += n
    return batch


_loss_and_grads = jax.jit(loss_and_grads, static_argnums=0)


def test_loss_is_the_mean_cross_entropy_over_response_tokens(tiny):
    loaded, graphdef, params, examples = tiny
    batch = _batch([[e] for e in examples])
    loss, _ = _loss_and_grads(graphdef, params, batch)
    logits = np.asarray(loaded.model(batch["inputs"][0], batch["positions"][0], batch["segment_ids"][0]), np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    target_log_probs = np.take_along_axis(log_probs, batch["targets"][0][..., None], -1)[..., 0]
    weights = batch["weights"][0]
    np.testing.assert_allclose(float(loss), -(target_log_probs * weights).sum() / weights.sum(), rtol=1e-5)


def test_prompt_labels_carry_no_gradient_and_response_labels_do(tiny):
    _, graphdef, params, examples = tiny
    batch = _batch([[e] for e in examples])
    loss, grads = _loss_and_grads(graphdef, params, batch)
    rng = np.random.default_rng(0)
    relabelled = {name: value.copy() for name, value in batch.items()}
    masked = relabelled["weights"] == 0
    relabelled["targets"][masked] = rng.integers(0, 264, masked.sum())
    same_loss, same_grads = _loss_and_grads(graphdef, params, relabelled)
    assert float(same_loss) == float(loss)
    for want, got in zip(jax.tree.leaves(grads), jax.tree.leaves(same_grads), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    response = np.argwhere(batch["weights"] == 1)[5]
    relabelled["targets"][tuple(response)] = (batch["targets"][tuple(response)] + 1) % 264
    changed_loss, _ = _loss_and_grads(graphdef, params, relabelled)
    assert float(changed_loss) != float(loss)


def test_packed_rows_give_the_loss_and_gradients_of_unpacked_rows(tiny):
    _, graphdef, params, examples = tiny
    assert sum(len(e["inputs"]) for e in examples[:3]) <= LENGTH
    unpacked_loss, unpacked_grads = _loss_and_grads(graphdef, params, _batch([[e] for e in examples]))
    packed_loss, packed_grads = _loss_and_grads(graphdef, params, _batch([examples[:3], examples[3:]]))
    np.testing.assert_allclose(float(packed_loss), float(unpacked_loss), rtol=1e-6)
    for want, got in zip(jax.tree.leaves(unpacked_grads), jax.tree.leaves(packed_grads), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-4, atol=1e-7)


def test_loss_falls_when_training_on_a_fixed_set(tiny):
    loaded, graphdef, params, examples = tiny
    settings = optimizer_settings(steps=12, peak_learning_rate=3e-3, final_learning_rate=3e-4, warmup_steps=2)
    optimizer = make_optimizer(settings, weight_decay_mask(loaded.model))

    @jax.jit
    def update(grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    batch = _batch([[e] for e in examples])
    opt_state = optimizer.init(params)
    losses = []
    for _ in range(settings.steps):
        loss, grads = _loss_and_grads(graphdef, params, batch)
        params, opt_state = update(grads, opt_state, params)
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 1.0, losses


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_final_rate():
    settings = optimizer_settings(steps=10, peak_learning_rate=1e-3, final_learning_rate=1e-4, warmup_steps=4)
    schedule = learning_rate_schedule(settings)
    got = np.array([float(schedule(s)) for s in range(10)])
    cosine = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + np.cos(np.pi * np.arange(6) / 5))
    np.testing.assert_allclose(got, np.concatenate([1e-3 * np.arange(1, 5) / 4, cosine]), rtol=1e-6)


@pytest.mark.parametrize("scale", [0.0, 0.1, 10.0])
def test_clipping_matches_optax_below_and_above_the_limit(scale):
    rng = np.random.default_rng(0)
    grads = {"a": jnp.asarray(scale * rng.standard_normal((4, 3)), jnp.float32),
             "b": jnp.asarray(scale * rng.standard_normal((5,)), jnp.float32)}
    ours, _ = clip_by_global_norm(1.0).update(grads, optax.EmptyState())
    theirs, _ = optax.clip_by_global_norm(1.0).update(grads, optax.EmptyState())
    assert float(optax.global_norm(ours)) <= 1.0 + 1e-6
    for name in grads:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6, atol=0)


def test_adamw_decays_matrices_but_not_norm_scales(tiny):
    mask = weight_decay_mask(tiny[0].model)
    assert mask["embed"] and mask["blocks"]["q_proj"] and not mask["final_norm"] and not mask["blocks"]["attn_norm"]
    settings = optimizer_settings(steps=2, peak_learning_rate=0.5, final_learning_rate=0.5, warmup_steps=0,
                                  weight_decay=0.1)
    optimizer = make_optimizer(settings, {"embed": True, "final_norm": False})
    params = {"embed": jnp.full((3, 2), 2.0), "final_norm": jnp.full((3,), 2.0)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = jax.jit(optimizer.update)(zeros, optimizer.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["embed"], 2.0 * (1 - 0.5 * 0.1), rtol=1e-6)
    np.testing.assert_array_equal(new["final_norm"], params["final_norm"])
