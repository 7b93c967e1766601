"""Distribution diagnostics: several models on the same contexts, reduced to curves and classes.

Each model runs once over every context (teacher-forced: prompt + response in one forward pass);
`distributions.batch_statistics` reduces each batch on device. The first model is the reference:
its distributions classify every position as a lock, a fork or neither (`LockForkRule`), and each
other model is compared with it on exactly those positions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from ssd_jax.analysis.contexts import Context, token_rows
from ssd_jax.analysis.distributions import TOP20_BIN_EDGES, batch_statistics, top20_bin, top20_bin_labels
from ssd_jax.errors import ConfigError

LENGTH_MULTIPLE = 64  # rows are padded to a multiple of this, so few lengths compile
CLASSES = ("other", "lock", "fork")


@dataclasses.dataclass(frozen=True)
class LockForkRule:
    """Lock: the reference model's top-1 probability is >= `lock_min_top1` (one continuation
    dominates; what is left is a distractor tail). Fork: its top-1 probability is < `fork_max_top1`
    AND its truncated entropy at the reference temperature is >= `fork_min_entropy` nats (several
    continuations survive the model's own truncation with real mass; ln 2 = two equally likely).
    Everything else is neither. configs/base.py's values follow the paper's toy model: its lock
    head puts 0.75 on the correct token, its fork head at most 0.28 on any one."""

    lock_min_top1: float
    fork_max_top1: float
    fork_min_entropy: float

    def classify(self, top1: np.ndarray, truncated_entropy: np.ndarray) -> np.ndarray:
        """0 (neither), 1 (lock) or 2 (fork) per position."""
        lock = top1 >= self.lock_min_top1
        fork = (top1 < self.fork_max_top1) & (truncated_entropy >= self.fork_min_entropy)
        return np.where(lock, 1, np.where(fork, 2, 0))


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """The `config.analysis` fields (documented, with their defaults, in configs/base.py), built
    by `ssd_jax.analysis.from_config.settings_from_config`; no field has a default here."""

    temperatures: tuple[float, ...]
    top_k: int  # the models' truncation (0 = off), as at evaluation
    top_p: float
    reference_temperature: float  # for the truncated entropy of the bins and classes
    batch_size: int
    max_rank: int  # surviving-token counts are exact below this many survivors
    rule: LockForkRule


@functools.partial(nnx.jit, static_argnames=("top_k", "top_p", "max_rank"))
def _forward_statistics(model, tokens, valid, temperatures, reference_temperature, *, top_k, top_p, max_rank):
    logits = model(tokens)
    batch, length, vocab = logits.shape
    return batch_statistics(logits.reshape(batch * length, vocab), valid.reshape(batch * length), temperatures,
                            reference_temperature, top_k=top_k, top_p=top_p, max_rank=max_rank)


def _row_length(contexts: Sequence[Context], context_size: int) -> int:
    longest = max(len(c.prompt_ids) + len(c.response_ids) for c in contexts)
    return min(-(-longest // LENGTH_MULTIPLE) * LENGTH_MULTIPLE, context_size)


def model_statistics(loaded, contexts: Sequence[Context], settings: AnalysisSettings, mesh=None,
                     progress: bool = False) -> dict:
    """Sums of the curves and per-position scalars (flattened over contexts, in order) for one model.

    The batch is split over the mesh's data axes like the sampler's; `settings.batch_size` must be
    a multiple of their size."""
    mesh = mesh or loaded.mesh
    data_size = mesh.shape["data"] * mesh.shape["fsdp"]
    if settings.batch_size % data_size:
        raise ConfigError(f"config.analysis.batch_size={settings.batch_size} must be a multiple of the mesh's "
                          f"data × fsdp size {data_size}")
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp")))
    temperatures = jnp.asarray(settings.temperatures, jnp.float32)
    sums: dict[str, np.ndarray] = {}
    per_position: dict[str, list[np.ndarray]] = {"top1": [], "top20": [], "entropy": [], "reference_entropy": []}
    starts = range(0, len(contexts), settings.batch_size)
    for start in tqdm(starts, desc=f"analysing {loaded.ref}", unit="batch", disable=not progress):
        batch = list(contexts[start : start + settings.batch_size])
        length = _row_length(batch, loaded.config.max_position_embeddings)
        tokens, valid = token_rows(batch, length)
        idle = settings.batch_size - len(batch)
        tokens, valid = np.asarray(tokens + [[0] * length] * idle, np.int32), np.asarray(valid + [[False] * length] * idle)
        out = _forward_statistics(loaded.model, jax.device_put(tokens, sharding), jax.device_put(valid, sharding),
                                  temperatures, jnp.float32(settings.reference_temperature),
                                  top_k=settings.top_k, top_p=settings.top_p, max_rank=settings.max_rank)
        out = jax.device_get(out)
        mask = valid.reshape(-1)
        for name, value in out.items():
            if name in per_position:
                per_position[name].append(np.asarray(value)[mask])
            else:
                sums[name] = sums.get(name, 0.0) + np.asarray(value, np.float64)
    return {"sums": sums, "per_position": {k: np.concatenate(v) for k, v in per_position.items()}}


def _class_summary(per_position: dict, selected: np.ndarray) -> dict:
    count = int(selected.sum())
    if not count:
        return {"positions": 0}
    return {
        "positions": count,
        "top1": float(per_position["top1"][selected].mean()),
        "tail_mass": float((1.0 - per_position["top20"][selected]).mean()),  # mass beyond the top 20 tokens
        "truncated_entropy": float(per_position["reference_entropy"][selected].mean()),
        "entropy": float(per_position["entropy"][selected].mean()),
    }


def summarize(name: str, ref: str, stats: dict, classes: np.ndarray, settings: AnalysisSettings) -> dict:
    """One model's JSON entry: mean curves, entropy by top-20 mass, and its lock/fork class means."""
    sums, per_position = stats["sums"], stats["per_position"]
    positions = float(sums["positions"])
    bins = top20_bin(per_position["top20"])
    by_mass = []
    for index, label in enumerate(top20_bin_labels()):
        selected = bins == index
        entropy = per_position["reference_entropy"][selected]
        by_mass.append({"bin": label, "positions": int(selected.sum()),
                        "truncated_entropy": float(entropy.mean()) if selected.any() else None})
    return {
        "ref": ref,
        "positions": int(positions),
        "cumulative_mass": (sums["cumulative_mass"] / positions).tolist(),
        "surviving_tokens": (sums["surviving"] / positions).tolist(),
        "truncated_entropy": (sums["truncated_entropy"] / positions).tolist(),
        "saturated_fraction": (sums["saturated"] / positions).tolist(),
        "entropy_by_top20_mass": by_mass,
        "classes": {label: _class_summary(per_position, classes == index) for index, label in enumerate(CLASSES)},
    }


def changes(reference: dict, other: dict) -> dict:
    """How `other` differs from the reference on the reference's locks and forks."""
    def delta(cls, field):
        a, b = reference["classes"][cls], other["classes"][cls]
        return b[field] - a[field] if a["positions"] and field in a and field in b else None

    return {"lock": {"top1": delta("lock", "top1"), "tail_mass": delta("lock", "tail_mass")},
            "fork": {"truncated_entropy": delta("fork", "truncated_entropy"), "entropy": delta("fork", "entropy")}}


def analyze(models: Sequence[tuple[str, str]], load, contexts: Sequence[Context], settings: AnalysisSettings,
            progress: bool = False) -> dict:
    """Runs each `(name, ref)` (loaded one at a time by `load(ref)`) over `contexts`; the first classifies.

    Returns the JSON-ready result: settings, one entry per model, and each model's change against the first.
    """
    result = {
        "settings": {"temperatures": list(settings.temperatures), "top_k": settings.top_k, "top_p": settings.top_p,
                     "reference_temperature": settings.reference_temperature, "max_rank": settings.max_rank,
                     "lock_fork_rule": dataclasses.asdict(settings.rule), "top20_bin_edges": list(TOP20_BIN_EDGES),
                     "contexts": len(contexts)},
        "models": {},
    }
    classes, vocab = None, None
    for name, ref in models:
        loaded = load(ref)
        if vocab is not None and loaded.config.vocab_size != vocab:
            raise ConfigError(f"model {name}={ref} has a {loaded.config.vocab_size}-token vocabulary, the reference "
                              f"{vocab}: the models must share a tokenizer to be compared on the same contexts")
        vocab = loaded.config.vocab_size
        stats = model_statistics(loaded, contexts, settings, progress=progress)
        if classes is None:
            per_position = stats["per_position"]
            classes = settings.rule.classify(per_position["top1"], per_position["reference_entropy"])
        result["models"][name] = summarize(name, ref, stats, classes, settings)
        del loaded
    names = list(result["models"])
    result["changes"] = {name: changes(result["models"][names[0]], result["models"][name]) for name in names[1:]}
    return result
