"""The paper's decomposition of the SSD objective (section 4), computed term by term.

With base distribution p, kept set S (after truncation), training temperature T and any target
q supported on S (SSD's q is p tempered at T on S), the cross-entropy splits as

    CE(q, p) = -log p(S) + (1 - T) · H_{1/T}(p|S) + T · KL(q ‖ p^{1/T}|S) + T · H(q)

where p|S is p renormalised on S, p^{1/T}|S is p tempered at T and renormalised on S, and
H_a is the Rényi entropy of order a (Shannon's at a = 1).
"""

from __future__ import annotations

import numpy as np


def renyi_entropy(probs: np.ndarray, order: float) -> float:
    """H_order(probs) = log(sum p^order) / (1 - order), in nats; Shannon entropy at order 1."""
    probs = np.asarray(probs, np.float64)
    probs = probs[probs > 0]
    if abs(order - 1.0) < 1e-12:
        return float(-(probs * np.log(probs)).sum())
    return float(np.log((probs ** order).sum()) / (1.0 - order))


def _entropy(probs: np.ndarray) -> float:
    return renyi_entropy(probs, 1.0)


def tempered_on(probs: np.ndarray, kept: np.ndarray, temperature: float) -> np.ndarray:
    """p^{1/T} restricted to the boolean mask `kept` and renormalised."""
    weights = np.where(kept, np.asarray(probs, np.float64) ** (1.0 / temperature), 0.0)
    return weights / weights.sum()


def objective_terms(probs: np.ndarray, kept: np.ndarray, target: np.ndarray, temperature: float) -> dict[str, float]:
    """The four terms of the decomposition, and the cross-entropy they add up to."""
    probs, target = np.asarray(probs, np.float64), np.asarray(target, np.float64)
    if np.any(target[~kept] > 0):
        raise ValueError("the target puts mass outside the kept set")
    kept_mass = probs[kept].sum()
    tempered = tempered_on(probs, kept, temperature)
    support = target > 0
    kl = float((target[support] * np.log(target[support] / tempered[support])).sum())
    return {
        "kept_mass": float(-np.log(kept_mass)),
        "renyi": (1.0 - temperature) * renyi_entropy(probs[kept] / kept_mass, 1.0 / temperature),
        "kl": temperature * kl,
        "entropy": temperature * _entropy(target),
        "cross_entropy": float(-(target[support] * np.log(probs[support])).sum()),
    }
