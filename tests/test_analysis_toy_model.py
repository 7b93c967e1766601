"""The paper's toy model (appendix C.4) and its decomposition of the SSD objective (section 4).

The paper's figures are the independent truth; the tolerances cover the toy's unstated tail
(geometric, ratio 1/2) and root path masses (0.2 each), see `toy_model`'s docstring.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssd_jax.analysis import objective, toy_model
from ssd_jax.sampling import filter_logits

PEAK_TOLERANCE = 0.0025  # absolute, in probability: 0.25 points of P(success)
TEMPERATURE_TOLERANCE = 0.005


@pytest.fixture(scope="module")
def figures():
    return toy_model.report()


def test_heads_match_the_paper():
    model = toy_model.ToyModel.paper()
    for probs in (model.root, model.fork, model.lock):
        assert probs.shape == (16,) and probs.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(model.lock[:4], [0.750, 0.055, 0.050, 0.037])
    assert np.argsort(-model.fork)[1] == toy_model.CORRECT  # the correct fork token is rank 2
    assert np.argmax(model.root) == 0 and model.root[0] == pytest.approx(0.329)  # FAIL first
    tail = model.lock[4:]
    np.testing.assert_allclose(tail[1:] / tail[:-1], toy_model.TAIL_RATIO)


def test_ssd_leaves_each_lock_two_tokens_at_94_8_and_5_2_percent(figures):
    kept = figures["student_lock_kept"]
    assert len(kept) == 2
    np.testing.assert_allclose(kept, [0.948, 0.052], atol=5e-4)


def test_teacher_and_student_peaks_match_the_paper(figures):
    teacher, student = figures["teacher"], figures["student"]
    assert teacher["peak_success"] == pytest.approx(0.0832, abs=PEAK_TOLERANCE)
    assert teacher["peak_temperature"] == pytest.approx(0.639, abs=TEMPERATURE_TOLERANCE)
    assert student["peak_success"] == pytest.approx(0.1377, abs=PEAK_TOLERANCE)
    assert student["peak_temperature"] == pytest.approx(2.091, abs=TEMPERATURE_TOLERANCE)


def test_success_probability_by_hand_at_one_temperature():
    """At T = 1 with top-p 0.8: tokens are kept while the mass strictly above them is < 0.8."""
    model = toy_model.ToyModel.paper()

    def nucleus(p):
        order = np.argsort(-p)
        before = np.cumsum(p[order]) - p[order]
        kept = np.zeros_like(p, bool)
        kept[order[before < 0.8]] = True
        return np.where(kept, p, 0) / p[kept].sum()

    root, fork, lock = nucleus(model.root), nucleus(model.fork), nucleus(model.lock)
    expected = (root[1] + root[2]) * fork[0] * lock[0] ** 3
    assert lock[0] == pytest.approx(0.750 / (0.750 + 0.055))  # the lock keeps two tokens at T = 1
    assert toy_model.success_probability(model, np.array([1.0]))[0] == pytest.approx(expected, rel=1e-5)


def test_plot_writes_a_png(figures, tmp_path):
    path = toy_model.plot(figures, str(tmp_path / "toy.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.7])
def test_cross_entropy_decomposes_into_the_papers_four_terms(temperature):
    rng = np.random.default_rng(int(temperature * 10))
    probs = rng.dirichlet(np.full(12, 0.5))
    kept = np.zeros(12, bool)
    kept[np.argsort(-probs)[:5]] = True
    for target in (objective.tempered_on(probs, kept, temperature),  # SSD's own target: KL = 0
                   np.where(kept, rng.dirichlet(np.ones(12)), 0.0)):  # any target on S
        target = target / target.sum()
        terms = objective.objective_terms(probs, kept, target, temperature)
        cross_entropy = -(target[kept] * np.log(probs[kept])).sum()
        parts = terms["kept_mass"] + terms["renyi"] + terms["kl"] + terms["entropy"]
        assert parts == pytest.approx(cross_entropy, rel=1e-10)
        assert terms["cross_entropy"] == pytest.approx(cross_entropy, rel=1e-12)
    assert objective.objective_terms(probs, kept, objective.tempered_on(probs, kept, temperature),
                                     temperature)["kl"] == pytest.approx(0.0, abs=1e-12)


def test_renyi_entropy_by_hand():
    p = np.array([0.5, 0.25, 0.25])
    assert objective.renyi_entropy(p, 2.0) == pytest.approx(-np.log(0.25 + 0.0625 + 0.0625))
    assert objective.renyi_entropy(p, 1.0) == pytest.approx(1.5 * np.log(2))
    assert objective.renyi_entropy(p, 1.0 + 1e-7) == pytest.approx(1.5 * np.log(2), rel=1e-5)


def test_sampling_at_t1_without_truncation_gives_zero_expected_gradient():
    """E_{y ~ q}[∇ -log softmax(z)_y] = softmax(z) - q: zero when q is the model's own
    untruncated T = 1 distribution, not when tempered or truncated."""
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(1, 32)) * 2, jnp.float32)

    def expected_gradient(temperature, top_p):
        target = jnp.exp(filter_logits(logits, jnp.array([temperature]), jnp.array([0]), jnp.array([top_p])))

        def loss(z):
            logprobs = jax.nn.log_softmax(z, axis=-1)
            return -jnp.sum(jnp.where(target > 0, target * logprobs, 0.0))

        return np.asarray(jax.grad(loss)(logits))

    np.testing.assert_allclose(expected_gradient(1.0, 1.0), 0.0, atol=1e-6)
    assert np.abs(expected_gradient(0.9, 1.0)).max() > 1e-3
    assert np.abs(expected_gradient(1.0, 0.8)).max() > 1e-3


def test_adaptive_decoding_of_the_toy_model_by_hand(figures):
    """Each head sampled at T·(2(1 - p1))^a: the same P(success) as the sampler's filter gives."""
    model, temperature, strength = toy_model.ToyModel.paper(), 0.9, 2.0

    def head_at(p):
        return toy_model.truncated(p, np.array([temperature * (2 * (1 - p.max())) ** strength]), 0.8)[0]

    root, fork, lock = head_at(model.root), head_at(model.fork), head_at(model.lock)
    expected = (root[1] + root[2]) * fork[0] * lock[0] ** 3
    got = toy_model.success_probability(model, np.array([temperature]), adaptive=strength)[0]
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(toy_model.success_probability(model, np.array([temperature]))[0], rel=1e-3)
    best = max(entry["peak_success"] for entry in figures["teacher_adaptive"].values())
    assert best < figures["student"]["peak_success"]
