"""The paper's toy model of the precision-exploration conflict (appendix C.4), runnable.

A 16-token vocabulary. Generation picks a root token (FAIL, or the first token of solution
path A or B), then one fork token, then three lock tokens; it succeeds when every pick is the
correct one. Both paths share the same fork and lock heads, so

    P(success) = [q_root(A) + q_root(B)] · q_fork(correct) · q_lock(correct)³

where q is a head's distribution after evaluation-time temperature and top-p (0.8). The heads:

* lock: `[0.750, 0.055, 0.050, 0.037, tail]`, correct token first (rank 1);
* fork: `[0.148, 0.280, 0.140, 0.144, tail]`, correct token first (rank 2 by probability);
* root: `[0.329 (FAIL), 0.2 (A), 0.2 (B), tail]`.

The paper gives neither the tail nor the root's path masses. Choices made here: every tail is
geometric with ratio 1/2 (each tail token half as likely as the one before; the simplest ratio,
and of the ratios 0.30-0.95 on a 0.05 grid the one that puts the teacher's best temperature
where the paper does), and A and B get 0.2 each (the two paths are symmetric). With them the
paper's figures come out as: after SSD each lock keeps 2 tokens at 94.8 % / 5.2 % (exact: that
split does not depend on the tail); the teacher peaks at 8.50 % at T 0.639 (paper: 8.32 % at
0.639) and the student at 13.85 % at T 2.094 (paper: 13.77 % at 2.091).

The decode-time rival: the teacher decoded with the sampler's adaptive temperature
(T·(2(1 - p1))^a per head) peaks at 8.76 % at best (a = 4, T 0.231) over a in {0.5, 1, 2, 4}: in this toy model no
per-position temperature of this family recovers SSD's gain (13.85 %).

SSD's idealised effect: the student's heads ARE the teacher's sampling distributions (T_train
0.9, top-p 0.85), i.e. fine-tuning converged on the teacher's samples. All truncation goes
through the sampler's own `filter_logits`, so the toy model and the sampler agree on top-p.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ssd_jax.sampling.filter import filter_logits

VOCAB = 16
TAIL_RATIO = 0.5
LOCK_HEAD = (0.750, 0.055, 0.050, 0.037)
FORK_HEAD = (0.148, 0.280, 0.140, 0.144)
ROOT_HEAD = (0.329, 0.2, 0.2)  # FAIL, path A, path B
CORRECT = 0  # the correct lock / fork token
PATHS = (1, 2)  # root tokens that start a solution path
EVAL_TOP_P = 0.8
TRAIN_TEMPERATURE, TRAIN_TOP_P = 0.9, 0.85


_filter = jax.jit(filter_logits)


def head(listed: tuple[float, ...], tail_ratio: float = TAIL_RATIO, vocab: int = VOCAB) -> np.ndarray:
    """`listed` probabilities, then the rest of the mass over a geometric tail of the other tokens."""
    listed_array = np.asarray(listed, np.float64)
    rest = 1.0 - listed_array.sum()
    if rest <= 0 or len(listed_array) >= vocab:
        raise ValueError(f"head {listed} leaves no mass or no tokens for a tail in a {vocab}-token vocabulary")
    weights = tail_ratio ** np.arange(vocab - len(listed_array))
    return np.concatenate([listed_array, rest * weights / weights.sum()])


@dataclasses.dataclass(frozen=True)
class ToyModel:
    """The three next-token distributions (each `[VOCAB]`, summing to 1)."""

    root: np.ndarray
    fork: np.ndarray
    lock: np.ndarray

    @classmethod
    def paper(cls, tail_ratio: float = TAIL_RATIO) -> "ToyModel":
        return cls(head(ROOT_HEAD, tail_ratio), head(FORK_HEAD, tail_ratio), head(LOCK_HEAD, tail_ratio))


def truncated(probs: np.ndarray, temperatures: np.ndarray, top_p: float, adaptive: float = 0.0) -> np.ndarray:
    """`probs [V]` tempered at each of `temperatures [N]` then cut to top-p → `[N, V]` probabilities.

    `adaptive` > 0: the sampler's adaptive temperature (ssd_jax.sampling.adaptive) at that strength."""
    temperatures = np.atleast_1d(np.asarray(temperatures, np.float32))
    logits = jnp.broadcast_to(jnp.log(jnp.asarray(probs, jnp.float32)), (len(temperatures), len(probs)))
    rows = len(temperatures)
    logprobs = _filter(logits, temperatures, jnp.zeros((rows,), jnp.int32), jnp.full((rows,), top_p),
                       jnp.full((rows,), adaptive, jnp.float32))
    return np.exp(np.asarray(logprobs, np.float64))


def success_probability(model: ToyModel, temperatures: np.ndarray, top_p: float = EVAL_TOP_P,
                        adaptive: float = 0.0) -> np.ndarray:
    """P(success) at each evaluation temperature `[N]` (with adaptive temperature at strength `adaptive`)."""
    root = truncated(model.root, temperatures, top_p, adaptive)
    fork = truncated(model.fork, temperatures, top_p, adaptive)
    lock = truncated(model.lock, temperatures, top_p, adaptive)
    return root[:, list(PATHS)].sum(-1) * fork[:, CORRECT] * lock[:, CORRECT] ** 3


def after_ssd(model: ToyModel, temperature: float = TRAIN_TEMPERATURE, top_p: float = TRAIN_TOP_P) -> ToyModel:
    """SSD's idealised student: every head becomes the teacher's sampling distribution."""
    def teach(probs):
        return truncated(probs, np.array([temperature]), top_p)[0]

    return ToyModel(teach(model.root), teach(model.fork), teach(model.lock))


def best_temperature(model: ToyModel, temperatures: np.ndarray, adaptive: float = 0.0) -> tuple[float, float]:
    """(highest P(success), the temperature reaching it) over the grid `temperatures`."""
    success = success_probability(model, temperatures, adaptive=adaptive)
    best = int(np.argmax(success))
    return float(success[best]), float(temperatures[best])


ADAPTIVE_STRENGTHS = (0.5, 1.0, 2.0, 4.0)


def report(temperatures: np.ndarray | None = None) -> dict:
    """The toy model's figures: the student's lock head, both success curves with their peaks, and
    the teacher decoded with adaptive temperature (the decode-time rival) at a few strengths."""
    temperatures = np.round(np.arange(0.1, 3.0 + 1e-9, 0.001), 3) if temperatures is None else temperatures
    teacher = ToyModel.paper()
    student = after_ssd(teacher)
    kept = student.lock[student.lock > 0]
    result = {"tail_ratio": TAIL_RATIO, "root_path_mass": ROOT_HEAD[1],
              "student_lock_kept": [float(p) for p in kept], "temperatures": temperatures.tolist()}
    for name, model in (("teacher", teacher), ("student", student)):
        peak, at = best_temperature(model, temperatures)
        result[name] = {"peak_success": peak, "peak_temperature": at,
                        "success": success_probability(model, temperatures).tolist()}
    result["teacher_adaptive"] = {}
    for strength in ADAPTIVE_STRENGTHS:
        peak, at = best_temperature(teacher, temperatures, strength)
        result["teacher_adaptive"][f"{strength:g}"] = {
            "peak_success": peak, "peak_temperature": at,
            "success": success_probability(teacher, temperatures, adaptive=strength).tolist()}
    return result


def plot(result: dict, path: str) -> str:
    """P(success) against evaluation temperature, teacher and student, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name in ("teacher", "student"):
        entry = result[name]
        axes.plot(result["temperatures"], np.asarray(entry["success"]) * 100,
                  label=f"{name}: peak {entry['peak_success']:.2%} at T={entry['peak_temperature']:.3f}")
    strength, best = max(result.get("teacher_adaptive", {}).items(), key=lambda item: item[1]["peak_success"],
                         default=(None, None))
    if best is not None:
        axes.plot(result["temperatures"], np.asarray(best["success"]) * 100, linestyle="--",
                  label=f"teacher, adaptive a={strength}: peak {best['peak_success']:.2%} at T={best['peak_temperature']:.3f}")
    axes.set(xlabel="evaluation temperature (top-p 0.8)", ylabel="P(success) %",
             title="Toy model (paper, appendix C.4)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
