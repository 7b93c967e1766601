"""The evaluation grid with canned responses: results, report files, resuming and re-scoring."""

import json
from pathlib import Path

import pytest
from settings_from_config import eval_settings

from ssd_jax.errors import ConfigError, InputError
from ssd_jax.evaluation.evaluator import EvalSettings, ModelSpec, evaluate
from ssd_jax.evaluation.generation import Generated
from ssd_jax.evaluation.jsonl_store import JsonlStore
from ssd_jax.evaluation.report import format_table
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import load_benchmark
from ssd_jax.stages.evaluate import models_from_config
from ssd_jax.stages.evaluate import run as evaluate_from_config

DATA = Path(__file__).parent / "data" / "evaluation"
CORRECT = {
    "abc360_a": "a, b = map(int, input().split())\nprint(a + b)",
    "3100": "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n"
            "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i",
}
WRONG = {"abc360_a": "print(0)", "3100": "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]"}
# correct samples out of 5 per (model, temperature, problem); sample 4 of "base" at T=1 has no code block
# (none of the correct ones: i < count <= 1 there)
CORRECT_COUNTS = {("base", 0.5, "abc360_a"): 2, ("base", 0.5, "3100"): 0, ("base", 1.0, "abc360_a"): 1,
                  ("base", 1.0, "3100"): 1, ("ssd", 0.5, "abc360_a"): 5, ("ssd", 0.5, "3100"): 3,
                  ("ssd", 1.0, "abc360_a"): 4, ("ssd", 1.0, "3100"): 0}
MODELS = [ModelSpec("base", "/ckpt/base"), ModelSpec("ssd", "/ckpt/ssd")]
SETTINGS = eval_settings(temperatures=(0.5, 1.0), top_k=20, top_p=0.8, n_samples=5, chunk_size=4, workers=2,
                         progress=False, grading=Limits(timeout_s=5))


@pytest.fixture(scope="module")
def problems():
    by_id = {p.id: p for p in load_benchmark("livecodebench", DATA / "livecodebench", release_version="release_v2")}
    return [by_id["abc360_a"], by_id["3100"]]


class FakeModel:
    """Canned responses: sample i is correct when i < the table's count; counts requests."""

    def __init__(self, fail_after_calls=None):
        self.requests, self.calls, self.fail_after_calls = 0, 0, fail_after_calls
        self.truncation = {}  # model name → {(top_k, top_p)} it was asked for

    def __call__(self, model_ref, requests):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.requests += len(requests)
        name = Path(model_ref).name
        outputs = []
        for r in requests:
            assert r.messages[-1]["role"] == "user"
            self.truncation.setdefault(name, set()).add((r.top_k, r.top_p))
            if name == "base" and r.temperature == 1.0 and r.sample_index == 4:
                outputs.append(Generated("I cannot solve this.", "eos", 5))
                continue
            good = r.sample_index < CORRECT_COUNTS[(name, r.temperature, r.prompt_id)]
            code = (CORRECT if good else WRONG)[r.prompt_id]
            outputs.append(Generated(f"Sure.\n```python\n{code}\n```\n", "eos", 30))
        return outputs


def expected_pass_at_1(model, temperature):
    return sum(CORRECT_COUNTS[(model, temperature, p)] / 5 for p in ("abc360_a", "3100")) / 2


def test_grid_results_report_and_table(tmp_path, problems, capsys):
    fake = FakeModel()
    results = evaluate(tmp_path, MODELS, problems, SETTINGS, fake, {"name": "livecodebench"})
    assert fake.truncation == {"base": {(20, 0.8)}, "ssd": {(20, 0.8)}}
    for model in ("base", "ssd"):
        for temperature in (0.5, 1.0):
            cell = results["models"][model]["temperatures"][f"{temperature:g}"]
            assert cell["per_problem_passes"] == {p: CORRECT_COUNTS[(model, temperature, p)] for p in ("3100", "abc360_a")}
            assert cell["pass@1"]["value"] == pytest.approx(expected_pass_at_1(model, temperature))
            low, high = cell["pass@1"]["ci95"]
            assert low <= cell["pass@1"]["value"] <= high
            any_correct = [CORRECT_COUNTS[(model, temperature, p)] > 0 for p in ("3100", "abc360_a")]
            assert cell["pass@5"]["value"] == pytest.approx(sum(any_correct) / 2)  # n = k = 5
            assert cell["n"] == 5 and cell["num_problems"] == 2
            assert set(cell["per_difficulty"]) == {"easy"}
    assert results["models"]["base"]["temperatures"]["1"]["statuses"]["no_code"] == 2  # one per problem
    assert results["models"]["ssd"]["best"] == {"temperature": 0.5, "pass@1": pytest.approx(0.8)}
    assert results["sandbox"]["sandboxed"] is True and results["grading_limits"]["timeout_s"] == 5
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"]["ssd"]["temperatures"]["0.5"]["per_problem_passes"] == {"3100": 3, "abc360_a": 5}
    assert (tmp_path / "pass_at_1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "pass@1 % [95% CI]" in table and table.count("\nssd ") == 2 and " 80.0 " in table
    assert "pass@1 easy" in table, "a column per difficulty label"
    assert "unknown" not in format_table(
        {"models": {m: {"temperatures": {t: {**s, "per_difficulty": {"unknown": s["per_difficulty"]["easy"]}}
                                         for t, s in entry["temperatures"].items()}}
                    for m, entry in results["models"].items()}}
    ), "no difficulty column for a benchmark without labels"
    verdicts = JsonlStore(tmp_path / "verdicts.jsonl").read()
    assert len(verdicts) == 40 and all(len(v["verdicts"]) in (8, 12) for v in verdicts)


def test_killed_generation_resumes_without_redrawing(tmp_path, problems):
    with pytest.raises(KeyboardInterrupt):
        evaluate(tmp_path, MODELS, problems, SETTINGS, FakeModel(fail_after_calls=2))
    assert len(JsonlStore(tmp_path / "samples.jsonl").read()) == 8
    resumed = FakeModel()
    results = evaluate(tmp_path, MODELS, problems, SETTINGS, resumed)
    assert resumed.requests == 40 - 8
    assert len(JsonlStore(tmp_path / "samples.jsonl").read()) == 40
    assert results["models"]["base"]["temperatures"]["0.5"]["pass@1"]["value"] == pytest.approx(0.2)


def test_killed_grading_resumes_and_rescoring_never_generates(tmp_path, problems):
    first = evaluate(tmp_path, MODELS, problems, SETTINGS, FakeModel())
    verdict_file = tmp_path / "verdicts.jsonl"
    lines = verdict_file.read_text().splitlines(keepends=True)
    verdict_file.write_text("".join(lines[:7]) + lines[7][:25])  # killed while writing record 8
    never = FakeModel(fail_after_calls=0)
    resumed = evaluate(tmp_path, MODELS, problems, SETTINGS, never)
    assert len(JsonlStore(verdict_file).read()) == 40
    assert resumed["models"] == first["models"]
    rescored = evaluate(tmp_path, MODELS, problems, EvalSettings(**{**SETTINGS.__dict__, "rescore": True}), never)
    assert rescored["models"] == first["models"] and never.calls == 0


def test_samples_are_keyed_by_model_identity_not_name(tmp_path, problems):
    """Another top-p, token budget or reference under the same name is another model: its
    samples are drawn anew, never taken from the store of the first."""
    evaluate(tmp_path, MODELS[:1], problems, SETTINGS, FakeModel())
    for changed in (EvalSettings(**{**SETTINGS.__dict__, "top_p": 0.95}),
                    EvalSettings(**{**SETTINGS.__dict__, "generation": (("max_new_tokens", 7),)})):
        fresh = FakeModel()
        evaluate(tmp_path, MODELS[:1], problems, changed, fresh)
        assert fresh.requests == 20, "every sample of the changed model is drawn again"
    moved = FakeModel()
    evaluate(tmp_path, [ModelSpec(MODELS[0].name, "/elsewhere")], problems, SETTINGS, lambda ref, r: moved("base", r))
    assert moved.requests == 20
    unchanged = FakeModel(fail_after_calls=0)
    evaluate(tmp_path, MODELS[:1], problems, SETTINGS, unchanged)
    assert unchanged.calls == 0, "the first model's samples are still found under its identity"


def _base_config():
    from configs import base

    return base.get_config()


def test_run_config_drives_the_evaluation(tmp_path):
    config = _base_config()
    config.workdir = str(tmp_path)
    config.model = "/ckpt/base"
    (tmp_path / "train" / "final").mkdir(parents=True)
    config.eval.models = ("extra=/ckpt/extra",)
    config.eval.base_top_k, config.eval.base_top_p = 0, -1.0  # the base model samples without top-k
    config.eval.benchmark.name, config.eval.benchmark.path = "livecodebench", str(DATA / "livecodebench")
    config.eval.benchmark.release_version, config.eval.benchmark.window = "release_v2", "v5"
    config.eval.temperatures, config.eval.n_samples, config.eval.workers = (0.5,), 5, 2
    config.eval.grading.per_test_timeout_s = 5.0
    fake = FakeModel()
    results = evaluate_from_config(config, generate_fn=lambda ref, requests: fake(
        {"/ckpt/base": "base"}.get(ref, "ssd"), requests))
    assert sorted(results["models"]) == ["base", "extra", "ssd"]
    assert fake.truncation == {"base": {(0, 0.8)}, "ssd": {(20, 0.8)}}
    assert results["models"]["base"]["temperatures"]["0.5"]["top_k"] == 0
    assert results["models"]["ssd"]["ref"] == str(tmp_path / "train" / "final")
    assert results["benchmark"]["filters"] == {"release_version": "release_v2", "window": "v5"}
    assert results["models"]["ssd"]["temperatures"]["0.5"]["per_problem_passes"] == {"3100": 3, "abc360_a": 5}
    assert results["models"]["base"]["temperatures"]["0.5"]["per_problem_passes"] == {"3100": 0, "abc360_a": 2}
    assert results["system_message"].startswith("You are an expert Python programmer.")
    assert (tmp_path / "eval" / "results.json").exists()


def test_ssd_model_must_exist_before_it_is_evaluated(tmp_path):
    config = _base_config()
    config.workdir, config.model = str(tmp_path), "base-ref"
    with pytest.raises(InputError, match="train first"):
        models_from_config(config)
    config.eval.include_ssd, config.eval.models = False, ("base=other",)
    with pytest.raises(ConfigError, match="model names must differ"):
        models_from_config(config)


def test_model_specs_parse_names():
    assert ModelSpec.parse("ssd=/runs/a/checkpoints/250") == ModelSpec("ssd", "/runs/a/checkpoints/250")
    assert ModelSpec.parse("/runs/a/base/") == ModelSpec("base", "/runs/a/base/")
    assert ModelSpec.parse("smollm2-135m-instruct").name == "smollm2-135m-instruct"


def test_the_base_model_gets_the_base_truncation():
    config = _base_config()
    config.model, config.eval.include_ssd, config.eval.models = "/ckpt/base", False, ("extra=/ckpt/extra",)
    config.eval.base_top_k, config.eval.base_top_p = 0, -1.0
    models = models_from_config(config)
    assert models == [ModelSpec("base", "/ckpt/base", 0, None), ModelSpec("extra", "/ckpt/extra")]
    assert models[0].truncation(SETTINGS) == (0, 0.8) and models[1].truncation(SETTINGS) == (20, 0.8)


def test_evaluation_sampler_takes_its_paged_cache_from_the_eval_settings():
    """`eval.page_size`/`kv_cache_pages` reach the evaluator's Sampler: a pool too small for one
    sample is refused up front, naming the field to raise; a large enough one samples."""
    from ssd_jax.evaluation.generation import GenerationRequest, sampler_generate_fn

    request = GenerationRequest("p", 0, ({"role": "user", "content": "def f():"},), 0.0, 0, 1.0)
    small = sampler_generate_fn(max_new_tokens=8, batch_size=1, seed=0, cache=dict(page_size=4, kv_cache_pages=2))
    with pytest.raises(ConfigError, match="kv_cache_pages"):
        small("tiny-random", [request])
    enough = sampler_generate_fn(max_new_tokens=8, batch_size=1, seed=0, cache=dict(page_size=4, kv_cache_pages=64))
    (generated,) = enough("tiny-random", [request])
    assert generated.num_tokens >= 1
