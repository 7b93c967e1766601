"""A run config's evaluation recipe reaches the evaluation: prompt style, grader, the total token
budget and the chat-template keyword arguments, and the results record style and grader."""

from pathlib import Path

import pytest
from settings_from_config import eval_settings
from ml_collections import ConfigDict

from configs import base
from ssd_jax.evaluation.evaluator import ModelSpec, grade_missing
from ssd_jax.evaluation.generation import Generated
from ssd_jax.evaluation.jsonl_store import JsonlStore
from ssd_jax.evaluation.report import format_table
from ssd_jax.stages import evaluate

DATA = Path(__file__).parent / "data" / "evaluation"
ANSWERS = {  # stdin: reads sys.stdin.buffer, which only the robust runner gives it
    "abc360_a": "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)",
    "3100": "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n"
            "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i",
}


def _run(tmp_path, monkeypatch, grader: str):
    seen = {}

    def fake_sampler_generate_fn(**kwargs):
        seen.update(kwargs)

        def generate(model_ref, requests):
            seen["messages"] = [r.messages for r in requests]
            return [Generated(f"```python\n{ANSWERS[r.prompt_id]}\n```", "eos", 9) for r in requests]

        return generate

    monkeypatch.setattr(evaluate, "sampler_generate_fn", fake_sampler_generate_fn)
    config = base.get_config()
    config.workdir, config.model = str(tmp_path / grader), "/ckpt/base"
    config.eval.include_ssd = False
    config.eval.benchmark.name, config.eval.benchmark.path = "livecodebench", str(DATA / "livecodebench")
    config.eval.benchmark.release_version, config.eval.benchmark.window = "release_v2", "v5"
    config.eval.temperatures, config.eval.n_samples, config.eval.workers = (0.7,), 1, 2
    config.eval.prompt_style, config.eval.grader = "ml-ssd", grader
    config.eval.max_total_tokens = 131_072
    config.eval.chat_template_kwargs = ConfigDict({"reasoning_effort": "high"})
    return evaluate.run(config), seen


def test_the_evaluation_recipe_reaches_the_sampler_and_the_grader_and_is_recorded(tmp_path, monkeypatch):
    robust, seen = _run(tmp_path, monkeypatch, "robust")
    assert seen["max_total_tokens"] == 131_072 and seen["chat_template_kwargs"] == {"reasoning_effort": "high"}
    assert all(len(m) == 1 and m[0]["content"].startswith("You will be given a question") for m in seen["messages"])
    assert (robust["prompt_style"], robust["grader"], robust["system_message"]) == ("ml-ssd", "robust", None)
    assert robust["models"]["base"]["temperatures"]["0.7"]["per_problem_passes"] == {"3100": 1, "abc360_a": 1}
    lcb, _ = _run(tmp_path, monkeypatch, "livecodebench")
    assert lcb["models"]["base"]["temperatures"]["0.7"]["per_problem_passes"] == {"3100": 1, "abc360_a": 0}
    assert "prompt style: ml-ssd, grader: livecodebench" in format_table(lcb)


def test_prompt_style_token_budget_and_template_arguments_are_part_of_each_models_identity():
    """Samples are stored under the model's identity: a resume under another prompt style, total
    budget or chat-template arguments draws its samples anew instead of reusing the old ones."""
    config = base.get_config()
    model = ModelSpec("base", "/ckpt/base")
    identity = evaluate.settings_from_config(config).model_id(model)
    for field, value in (("prompt_style", "ml-ssd"), ("max_total_tokens", 4096),
                         ("chat_template_kwargs", ConfigDict({"reasoning_effort": "high"}))):
        changed = base.get_config()
        changed.eval[field] = value
        assert evaluate.settings_from_config(changed).model_id(model) != identity, field
    faster = base.get_config()
    faster.eval.batch_size = 8  # how fast, not what is sampled
    assert evaluate.settings_from_config(faster).model_id(model) == identity


def test_verdicts_of_another_grader_are_refused_until_rescored(tmp_path):
    store = JsonlStore(tmp_path / "verdicts.jsonl")
    store.append([{"model": "base", "model_id": "x", "temperature": 0.7, "problem_id": "p", "sample_index": 0,
                   "grader": "robust", "passed": True, "status": "pass"}])
    settings = eval_settings(temperatures=(0.7,), grader="livecodebench")
    with pytest.raises(ValueError, match=r"verdicts of the \['robust'\] grader .*config.eval.rescore=True"):
        grade_missing(store, {}, [], [], settings, isolation=None)
