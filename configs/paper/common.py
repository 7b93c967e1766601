"""The paper's recipe (DESIGN §1) as one function; each paper config fills in its model's row."""

from __future__ import annotations

import numpy as np
from ml_collections import ConfigDict

from configs import base

# Decisions not fixed by the paper (written down here, where they take effect):
# - Generation budgets: 16k new tokens for instruct models, 32k for thinking models, both when
#   sampling SSD data and when evaluating; training rows hold up to 65,536 tokens.
# - The evaluation grid spans 0.2 below the base model's best T to 0.2 above the SSD model's, in
#   steps of 0.1, so both paper optima are inside it with a neighbour on each side.
INSTRUCT_NEW_TOKENS = 16_384
THINKING_NEW_TOKENS = 32_768


def temperature_grid(low: float, high: float, margin: float = 0.2, step: float = 0.1) -> tuple[float, ...]:
    lo, hi = min(low, high) - margin, max(low, high) + margin
    return tuple(float(t) for t in np.round(np.arange(max(lo, step), hi + step / 2, step), 2))


def paper_config(
    *,
    name: str,
    model: str,
    thinking: bool,
    sample: tuple[float, int, float],
    eval_ssd: tuple[float, int, float],
    eval_base: tuple[float, int, float],
    mesh: dict,
    micro_batch: int,
) -> ConfigDict:
    """`sample` / `eval_ssd` / `eval_base` are (temperature, top_k, top_p); top_k 0 = none."""
    c = base.get_config()
    c.workdir = f"runs/{name}"
    c.model = model
    c.dtype = "bfloat16"
    c.param_dtype = "float32"
    c.mesh = ConfigDict(mesh)

    c.prompts.source = "rstar-coder"
    c.prompts.path = "data/rStar-Coder/seed_sft"  # Local copy of the seed_sft parquet shards.
    c.prompts.require_passed = True  # De-duplicated + is_passed: the paper's 10,167 problems.

    c.sampling.temperature, c.sampling.top_k, c.sampling.top_p = sample
    c.sampling.n_samples = 1
    c.sampling.max_new_tokens = THINKING_NEW_TOKENS if thinking else INSTRUCT_NEW_TOKENS

    c.data.filter = "minimal"
    c.data.max_length = 65_536

    c.train.steps = 300 if thinking else 2500
    c.train.warmup_steps = 50 if thinking else 250
    c.train.checkpoint_every = 50 if thinking else 250
    c.train.global_batch = 32
    c.train.micro_batch = micro_batch
    c.train.peak_learning_rate = 5e-6
    c.train.final_learning_rate = 1e-6
    c.train.b1, c.train.b2, c.train.weight_decay = 0.9, 0.95, 0.1
    c.train.remat = "block"  # 65k-token rows do not fit without rematerialisation (launch/compile.py).

    c.eval.benchmark.name = "livecodebench"
    c.eval.benchmark.path = "data/code_generation_lite"  # Local copy of test.jsonl .. test6.jsonl.
    c.eval.benchmark.window = "v6"
    c.eval.temperatures = temperature_grid(eval_base[0], eval_ssd[0])
    _, c.eval.top_k, c.eval.top_p = eval_ssd
    _, c.eval.base_top_k, c.eval.base_top_p = eval_base
    c.eval.n_samples = 10
    c.eval.max_new_tokens = c.sampling.max_new_tokens
    return c
