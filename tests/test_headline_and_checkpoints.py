"""The headline pass@1 is never read at a temperature chosen on the problems it is scored on:
`fixed` reads it at the paper's evaluation T (Table 3), `split` chooses T on one half of the
problems and scores the other; the base-vs-SSD interval pairs the same problems. With
`eval.checkpoints="all"` every saved checkpoint gets its row and the best one is marked."""

import pytest
from settings_from_config import eval_settings

from configs import base
from ssd_jax.checkpoints.orbax import MARKER
from ssd_jax.errors import ConfigError, InputError
from ssd_jax.evaluation.report import Cell, build_results, compare, format_table, split_halves
from ssd_jax.stages.evaluate import models_from_config

PROBLEMS = [f"p{i}" for i in range(8)]


def _cell(model: str, temperature: float, passes: dict[str, int], n: int = 4) -> Cell:
    cell = Cell(model, f"ref-{model}", temperature, 20, 0.8)
    cell.passes = {pid: [True] * c + [False] * (n - c) for pid, c in passes.items()}
    return cell


def _grid() -> list[Cell]:
    select, score = split_halves(PROBLEMS, seed=0)
    # SSD: T=0.6 is best on the choosing half (all pass), T=1.0 on the scoring half.
    ssd_06 = {**{p: 4 for p in select}, **{p: 1 for p in score}}
    ssd_10 = {**{p: 2 for p in select}, **{p: 3 for p in score}}
    base = {p: 2 for p in PROBLEMS}
    return [_cell("ssd", 0.6, ssd_06), _cell("ssd", 1.0, ssd_10), _cell("base", 0.6, base), _cell("base", 1.0, base)]


def test_split_chooses_on_one_half_and_scores_on_the_other():
    select, score = split_halves(PROBLEMS, seed=0)
    assert len(select) == len(score) == 4 and not set(select) & set(score)
    results = build_results(_grid(), {}, {}, 0, {"ssd": {"mode": "split"}, "base": {"mode": "split"}})
    headline = results["models"]["ssd"]["headline"]
    assert headline["temperature"] == 0.6  # chosen on `select`
    assert headline["pass@1"]["value"] == pytest.approx(1 / 4)  # scored on `score`: 1 of 4 samples each
    assert sorted(headline["per_problem_passes"]) == score
    assert results["models"]["ssd"]["best"]["pass@1"] == pytest.approx((4 + 1) / 8)  # the in-sample figure
    summary = compare(results, "base", "ssd")
    assert summary["num_problems"] == 4 and summary["gain"]["value"] == pytest.approx(1 / 4 - 2 / 4)
    assert "chosen on 4 problems, scored on the other 4" in format_table(results)


def test_fixed_reads_the_paper_temperature_on_every_problem():
    rules = {"ssd": {"mode": "fixed", "temperature": 1.0}, "base": {"mode": "fixed", "temperature": 0.6}}
    results = build_results(_grid(), {}, {}, 0, rules)
    headline = results["models"]["ssd"]["headline"]
    assert headline["temperature"] == 1.0 and headline["num_problems"] == 8
    assert headline["pass@1"]["value"] == pytest.approx((4 * 2 + 4 * 3) / 32)
    summary = compare(results, "base", "ssd")
    assert summary["num_problems"] == 8 and summary["ssd"]["rule"] == "fixed"
    with pytest.raises(ConfigError, match="must be one of config.eval.temperatures"):
        eval_settings(temperatures=(0.6, 1.0), headline="fixed", headline_temperature=1.1,
                      base_headline_temperature=0.6)


def test_every_checkpoint_gets_a_row_and_the_best_is_marked():
    cells = _grid() + [_cell("ssd@50", t, {p: 1 for p in PROBLEMS}) for t in (0.6, 1.0)]
    cells += [_cell("ssd@100", t, {p: 4 for p in PROBLEMS}) for t in (0.6, 1.0)]
    rules = {name: {"mode": "fixed", "temperature": 1.0} for name in ("ssd", "ssd@50", "ssd@100", "base")}
    results = build_results(cells, {}, {}, 0, rules)
    rows = results["checkpoints"]
    assert [row["step"] for row in rows] == [50, 100, "final"]
    assert [row["best"] for row in rows] == [False, True, False]
    assert "checkpoint 100: pass@1 100.0 at T = 1  <- best" in format_table(results)


def test_all_checkpoints_are_evaluated_from_the_models_the_trainer_exported(tmp_path):
    config = base.get_config()
    config.workdir, config.model, config.eval.checkpoints = str(tmp_path), "base-ref", "all"
    (tmp_path / "train" / "final").mkdir(parents=True)
    with pytest.raises(InputError, match="config.train.checkpoint_models=True"):
        models_from_config(config)
    for step in (100, 50, 75):
        (tmp_path / "train" / "models" / f"step_{step}").mkdir(parents=True)
    for step in (100, 50):  # step 75's export never finished: it has no model marker
        (tmp_path / "train" / "models" / f"step_{step}" / MARKER).write_text("{}")
    models = models_from_config(config)
    assert [model.name for model in models] == ["base", "ssd", "ssd@50", "ssd@100"]
    assert models[3].ref == str(tmp_path / "train" / "models" / "step_100")
    assert models[2].provenance == models[1].provenance, "a checkpoint's model comes from the same training run"
    config.eval.checkpoints = "every"
    with pytest.raises(ConfigError, match="config.eval.checkpoints='every'"):
        models_from_config(config)


def test_the_trainer_exports_each_checkpoints_model_and_leaves_the_last_to_final(tmp_path):
    """train.checkpoint_models: `train/models/step_<N>` for every checkpoint but the last (that one
    is `train/final`); each is a loadable model holding that step's parameters, not the final ones."""
    import jax
    import numpy as np
    from flax import nnx
    from sample_shards import write_code_shards

    import ssd_jax
    from configs import tiny
    from ssd_jax.training.settings import TrainSettings
    from ssd_jax.training.trainer import train
    from ssd_jax.workdir import Workdir

    config = tiny.get_config()
    config.workdir, config.data.samples_dir = str(tmp_path / "run"), str(write_code_shards(tmp_path / "samples", 16))
    config.data.max_length, config.data.read_threads = 128, 1
    config.mesh.data, config.train.global_batch = 8, 8  # one example per fake device
    config.train.steps, config.train.checkpoint_every, config.train.checkpoint_models = 2, 1, True
    config.train.async_checkpointing = False
    result = train(TrainSettings.from_config(config))
    workdir = Workdir(config.workdir)
    assert sorted(path.name for path in workdir.checkpoint_models.iterdir()) == ["step_1"]

    def params(directory):
        state = nnx.state(ssd_jax.load_model(str(directory)).model, nnx.Param).to_pure_dict()
        return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(state)])

    first, final = params(workdir.checkpoint_model(1)), params(result.final_model)
    assert not np.array_equal(first, params("tiny-random")), "step 1 trained"
    assert not np.array_equal(first, final), "step 1's model, not the final one"
