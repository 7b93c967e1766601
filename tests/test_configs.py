"""Configs read like the paper, sweeps expand into valid variants, MoE rows stop clearly.

The paper's numbers are stated here, not read from configs/, so a config that drifts from the
paper fails. Paths are resolved from this file, so the tests run the same from any directory.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from ssd_jax import sweeps

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

# The paper's Table 3: per base model, (temperature, top-k, top-p) for sampling the SSD data, for
# evaluating the SSD model and for evaluating the base model; top-k 0 means none.
TABLE_3 = {
    "qwen3_4b_instruct": ((1.6, 20, 0.8), (1.1, 20, 0.8), (0.7, 20, 0.8)),
    "qwen3_4b_thinking": ((1.1, 20, 0.95), (0.7, 20, 0.95), (0.6, 20, 0.95)),
    "qwen3_30b_a3b_instruct": ((1.6, 20, 0.8), (0.9, 20, 0.8), (0.7, 20, 0.8)),
    "qwen3_30b_a3b_thinking": ((1.2, 20, 0.95), (0.7, 20, 0.95), (0.6, 20, 0.95)),
    "llama31_8b_instruct": ((0.8, 20, 0.8), (0.7, 20, 0.8), (0.9, 0, 0.8)),
    "gpt_oss_20b": ((1.2, 0, 1.0), (1.0, 20, 0.95), (1.0, 0, 1.0)),
}
MIXTURE_OF_EXPERTS = ("qwen3_30b_a3b_instruct", "qwen3_30b_a3b_thinking", "gpt_oss_20b")
# The paper's fine-tuning recipe: AdamW (β1, β2, weight decay); warmup then cosine decay of the
# learning rate from its peak to its final value; global batch; steps, warmup steps and checkpoint
# interval for instruct and for thinking models; rows up to 65,536 tokens; one sample per prompt;
# evaluation with 10 samples per problem on LiveCodeBench v6.
ADAMW = (0.9, 0.95, 0.1)
LEARNING_RATE = (5e-6, 1e-6)
GLOBAL_BATCH = 32
STEPS = {"instruct": (2500, 250, 250), "thinking": (300, 50, 50)}
MAX_LENGTH = 65_536


def paper_recipe(name: str):
    module = sweeps.load_module(str(CONFIGS / "paper" / f"{name}.py"))
    return module.recipe() if hasattr(module, "recipe") else module.get_config()


def test_every_table_3_row_has_a_config():
    assert sorted(path.stem for path in (CONFIGS / "paper").glob("*.py") if path.stem in TABLE_3) == sorted(TABLE_3)


@pytest.mark.parametrize("name", sorted(TABLE_3))
def test_paper_configs_hold_the_paper_recipe(name):
    c = paper_recipe(name)
    sample, ssd, base = TABLE_3[name]
    assert (c.sampling.temperature, c.sampling.top_k, c.sampling.top_p) == sample
    assert (c.eval.top_k, c.eval.top_p) == ssd[1:] and (c.eval.base_top_k, c.eval.base_top_p) == base[1:]
    assert ssd[0] in c.eval.temperatures and base[0] in c.eval.temperatures
    steps = STEPS["thinking" if "thinking" in name or name == "gpt_oss_20b" else "instruct"]
    assert (c.train.steps, c.train.warmup_steps, c.train.checkpoint_every) == steps
    assert (c.train.peak_learning_rate, c.train.final_learning_rate) == LEARNING_RATE
    assert (c.train.b1, c.train.b2, c.train.weight_decay) == ADAMW and c.train.global_batch == GLOBAL_BATCH
    assert c.data.max_length == MAX_LENGTH and c.sampling.n_samples == 1
    assert c.prompts.require_passed and c.eval.n_samples == 10 and c.eval.benchmark.window == "v6"


@pytest.mark.parametrize("name", MIXTURE_OF_EXPERTS)
def test_moe_configs_say_not_supported_yet(name):
    module = sweeps.load_module(str(CONFIGS / "paper" / f"{name}.py"))
    with pytest.raises(NotImplementedError, match="not support"):
        module.get_config()


def test_every_other_config_loads():
    paths = sorted(CONFIGS.glob("*.py")) + sorted((CONFIGS / "sweeps").glob("*.py"))
    loaded = []
    for path in paths:
        module = sweeps.load_module(str(path))
        if hasattr(module, "get_config"):
            assert module.get_config().workdir, path
            loaded.append(path.stem)
    assert {"base", "tiny", "demo", "demo_full", "smollm2"} <= set(loaded)


def test_t_train_sweep_expands_to_five_variants_with_their_own_workdirs(monkeypatch):
    monkeypatch.chdir(REPO)  # a sweep names its base config relative to the repository
    base, variants = sweeps.load_sweep(str(CONFIGS / "sweeps" / "t_train_x_t_eval.py"))
    assert [v["sampling.temperature"] for v in variants] == [0.5, 0.7, 1.0, 1.5, 2.0]
    configs = [sweeps.variant_config(base, v) for v in variants]
    assert len({c.workdir for c in configs}) == 5
    assert all(c.eval.temperatures[0] == 0.6 and c.eval.temperatures[-1] == 1.5 for c in configs)


def test_unknown_override_field_is_named():
    with pytest.raises(KeyError, match="sampling.temprature"):
        sweeps.variant_config(str(CONFIGS / "tiny.py"), {"sampling.temprature": 1.0})


def test_print_mode_gives_one_launch_command_per_variant():
    out = subprocess.run(
        [sys.executable, "launch/sweep.py", "--sweep=configs/sweeps/t_train_x_t_eval.py", "--print"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout.splitlines()
    assert len(out) == 5 and all(line.startswith("python launch/ssd.py --config=configs/paper/") for line in out)
    assert "--config.sampling.temperature=1.5" in out[3]
