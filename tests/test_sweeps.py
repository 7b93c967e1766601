"""The paper's sweeps: the bad-data stress test (T_train 2.0, no top-k/top-p, no filter) and the
T_train × T_eval sweep without training truncation, both on Qwen3-30B-A3B-Instruct-2507; the
sweep report prints T_eff = T_train · T_eval beside each pass@1."""

import json

from ssd_jax import sweeps

SWEEP = "configs/sweeps/t_train_x_t_eval.py"


def test_the_bad_data_stress_test_is_the_papers():
    module = sweeps.load_module("configs/sweeps/bad_data.py")
    c = module.get_config()
    assert c.model.endswith("Qwen3-30B-A3B-Instruct-2507")
    assert (c.sampling.temperature, c.sampling.top_k, c.sampling.top_p) == (2.0, 0, 1.0)
    assert c.data.filter == "none" and c.data.truncated == "keep"


def test_the_t_eff_sweep_samples_without_truncation_and_evaluates_over_0_6_to_1_5():
    base, variants = sweeps.load_sweep(SWEEP)
    assert base == "configs/paper/qwen3_30b_a3b_instruct.py"
    assert [v["sampling.temperature"] for v in variants] == [0.5, 0.7, 1.0, 1.5, 2.0]
    for variant in variants:
        config = sweeps.variant_config("configs/paper/qwen3_4b_instruct.py", variant)  # a supported model
        assert (config.sampling.top_k, config.sampling.top_p) == (0, 1.0)
        assert (config.eval.top_k, config.eval.top_p) == (20, 0.8)  # evaluation keeps the model's truncation
        assert config.eval.temperatures == (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


def _write_results(workdir, models: dict[str, dict[float, float]]) -> None:
    entries = {name: {"temperatures": {f"{t:g}": {"temperature": t, "pass@1": {"value": v, "ci95": [v, v]}}
                                       for t, v in points.items()}} for name, points in models.items()}
    (workdir / "eval").mkdir(parents=True)
    (workdir / "eval" / "results.json").write_text(json.dumps({"models": entries}))


def test_the_report_prints_t_eff_and_the_best_checkpoint(tmp_path):
    variants = [{"workdir": str(tmp_path / "a"), "sampling.temperature": 1.5},
                {"workdir": str(tmp_path / "b"), "sampling.temperature": 0.5}]
    _write_results(tmp_path / "a", {"ssd": {0.8: 0.40, 1.0: 0.30}, "ssd@250": {0.8: 0.45, 1.0: 0.20}})
    report = sweeps.sweep_report("configs/paper/qwen3_4b_instruct.py", variants)
    lines = report.splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")][:3] == ["T_train", "T_eval", "T_eff"]
    rows = [[cell.strip() for cell in line.split(" | ")] for line in lines[2:4]]
    assert rows[0] == ["1.5", "0.8", "1.20", "40.0", "45.0 (ssd@250)"]
    assert rows[1] == ["1.5", "1", "1.50", "30.0", "30.0 (ssd)"]
    assert "not evaluated yet" in lines[4]
    assert lines[-1] == "highest pass@1 45.0% at T_train 1.5 × T_eval 0.8 = T_eff 1.20"
