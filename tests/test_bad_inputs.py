"""Every bad input ends a launcher with one line that names the field or file, and harms nothing.

The real launchers run as subprocesses over a table of bad inputs: config fields out of range,
missing paths, and truncated or corrupt files of every kind a run reads (sample shards,
training checkpoints, model directories, GGUF and safetensors files, JSONL prompts, rStar
parquet, HumanEval and LiveCodeBench files, config files). Each case must exit non-zero, print
no traceback, print `<launcher>.py: error: ...` naming the field or file, and leave every file
that was in the work directory byte-identical. The cases share one prepared work directory
(sample shards, training checkpoints of steps 1 and 2 and the final model of a 2-step run),
copied per case, and run two at a time.

Two in-process tests check that the ways out the errors name are real: re-running sampling
rebuilds the records of a corrupt shard, and `train.restore_fallback` resumes from the
checkpoint before an unreadable one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grain
import jax.numpy as jnp
import optax
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sample_shards import make_record, write_code_shards
from train_runs import REPO

from configs import base
from configs.validation import GREEDY_TEMPERATURE, validate_config
from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.checkpoints.load import load_model
from ssd_jax.data.records import CORRUPT_SUFFIX, ShardWriter, process_shard_name, read_records
from ssd_jax.errors import ConfigError
from ssd_jax.problems.humaneval import default_humaneval_path
from ssd_jax.sampling import filter as sampling_filter
from ssd_jax.training.checkpointing import UNREADABLE_SUFFIX, CheckpointRestoreError, TrainCheckpoints

SHARD = "samples/samples-process00000-00001.arrayrecord"
# The 2-step training run the prepared work directory holds (on <workdir>/samples, so that a copy of
# the directory resumes with the same settings); train cases repeat its settings.
TRAIN = ["--config.data.max_length=128", "--config.data.read_threads=1",
         "--config.train.steps=2", "--config.train.global_batch=2", "--config.train.warmup_steps=1",
         "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=2"]
NO_SSD = ["--config.eval.include_ssd=False"]


# --- what a case does to its copy of the work directory -----------------------------------------


def _cut(path: Path, fraction: float = 0.5) -> None:
    os.truncate(path, int(path.stat().st_size * fraction))


def _largest_file(directory: Path) -> Path:
    return max((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def truncated_shard(w: Path) -> None:
    """Sampling finished with a damaged shard; training has not started."""
    shutil.rmtree(w / "train")
    _cut(w / SHARD)


def unfinished_training(w: Path) -> None:
    """Training killed after its checkpoints: not marked complete, no final model."""
    (w / "train" / "COMPLETE").unlink()
    shutil.rmtree(w / "train" / "final")


def unreadable_checkpoint(w: Path) -> None:
    unfinished_training(w)
    os.truncate(_largest_file(w / "train" / "checkpoints" / "2" / "params"), 1000)


def no_readable_checkpoint(w: Path) -> None:
    unreadable_checkpoint(w)
    os.truncate(_largest_file(w / "train" / "checkpoints" / "1" / "params"), 1000)


def truncated_final_model(w: Path) -> None:
    os.truncate(_largest_file(w / "train" / "final" / "params"), 100)


def truncated_gguf(w: Path) -> None:
    with open(resolve_builtin("smollm2-135m-instruct"), "rb") as source:
        (w / "model.gguf").write_bytes(source.read(2_000_000))


def truncated_safetensors(w: Path) -> None:
    _cut(w / "hf" / "model.safetensors")


def truncated_jsonl_prompts(w: Path) -> None:
    lines = [json.dumps({"id": f"p{i}", "prompt": f"Print {i} squared."}) for i in range(3)]
    text = "\n".join(lines)
    (w / "prompts.jsonl").write_text(text[: len(text) - 10])


def jsonl_prompt_without_id(w: Path) -> None:
    (w / "prompts.jsonl").write_text(json.dumps({"prompt": "Print 1."}) + "\n")


def truncated_rstar_parquet(w: Path) -> None:
    table = pa.table({"question": ["Print 1."] * 50, "starter_code": [""] * 50, "id": [str(i) for i in range(50)]})
    pq.write_table(table, w / "rstar.parquet")
    _cut(w / "rstar.parquet")


def truncated_humaneval(w: Path) -> None:
    (w / "HumanEval.jsonl.gz").write_bytes(default_humaneval_path().read_bytes()[:3000])


def truncated_livecodebench(w: Path) -> None:
    (w / "lcb").mkdir()
    row = {"question_title": "t", "question_content": "Print 1.", "platform": "atcoder", "question_id": "q1",
           "contest_id": "c", "contest_date": "2025-03-01T00:00:00", "starter_code": "", "difficulty": "easy",
           "public_test_cases": "[]", "private_test_cases": "[]", "metadata": "{}"}
    text = json.dumps(row) + "\n" + json.dumps(row)
    (w / "lcb" / "test.jsonl").write_text(text[: len(text) - 40])


def truncated_config_file(w: Path) -> None:
    text = (REPO / "configs" / "tiny.py").read_text()
    (w / "config.py").write_text(text[: len(text) // 2])


def no_final_model(w: Path) -> None:
    shutil.rmtree(w / "train" / "final")


def finished_stage_with_other_settings(w: Path) -> None:
    (w / "samples" / "COMPLETE").write_text(json.dumps({"settings": {"model": "another-model"}, "result": None}))


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    launcher: str  # sample | train | evaluate | ssd | dump_samples
    args: tuple[str, ...]  # "{w}" is the case's work directory
    names: str  # what the error line must contain, the field or the file ("{w}": the work directory)
    setup: Callable[[Path], None] | None = None
    config: str = str(REPO / "configs" / "tiny.py")


CASES = [
    # sampling
    Case("negative temperature", "sample", ("--config.sampling.temperature=-1",), "sampling.temperature=-1.0"),
    Case("greedy SSD sampling", "sample", ("--config.sampling.temperature=0",), "sampling.temperature=0.0"),
    Case("temperature that is silently greedy", "sample", ("--config.sampling.temperature=0.000001",),
         "sampling.temperature=1e-06"),
    Case("top_p 0", "sample", ("--config.sampling.top_p=0",), "sampling.top_p=0.0: must be in (0, 1]"),
    Case("top_k negative", "sample", ("--config.sampling.top_k=-5",), "sampling.top_k=-5"),
    Case("n_samples 0", "sample", ("--config.sampling.n_samples=0",), "sampling.n_samples=0"),
    Case("misspelt field", "sample", ("--config.sampling.temprature=1.0",),
         "--config.sampling.temprature: no such config field; did you mean --config.sampling.temperature?"),
    Case("wrong type", "sample", ("--config.sampling.top_k=1.5",), "--config.sampling.top_k=1.5"),
    Case("model_parallel over the devices", "sample", ("--config.sampling.model_parallel=2",),
         "sampling.model_parallel=2"),
    # prompts and models
    Case("unknown prompt source", "sample", ("--config.prompts.source=nope",), "prompts.source='nope'"),
    Case("missing prompt file", "sample", ("--config.prompts.source=jsonl", "--config.prompts.path={w}/none.jsonl"),
         "prompts.path='{w}/none.jsonl'"),
    Case("truncated JSONL prompts", "sample", ("--config.prompts.source=jsonl", "--config.prompts.path={w}/prompts.jsonl"),
         "{w}/prompts.jsonl", truncated_jsonl_prompts),
    Case("JSONL prompt without id", "sample", ("--config.prompts.source=jsonl", "--config.prompts.path={w}/prompts.jsonl"),
         "{w}/prompts.jsonl:1", jsonl_prompt_without_id),
    Case("truncated rStar-Coder parquet", "sample",
         ("--config.prompts.source=rstar-coder", "--config.prompts.path={w}/rstar.parquet"), "{w}/rstar.parquet",
         truncated_rstar_parquet),
    Case("missing model file", "sample", ("--config.model={w}/none.gguf",), "model='{w}/none.gguf'"),
    Case("unknown model name", "sample", ("--config.model=smollm3",), "model='smollm3'"),
    Case("truncated GGUF", "sample", ("--config.model={w}/model.gguf",), "{w}/model.gguf", truncated_gguf),
    Case("truncated safetensors", "sample", ("--config.model={w}/hf",), "{w}/hf", truncated_safetensors),
    # data
    Case("unknown filter", "train", ("--config.data.filter=strict",), "data.filter='strict'"),
    Case("max_length 1", "train", ("--config.data.max_length=1",), "data.max_length=1"),
    Case("missing samples_dir", "train", ("--config.data.samples_dir={w}/nowhere",), "data.samples_dir='{w}/nowhere'"),
    Case("truncated sample shard", "train", (), f"{{w}}/{SHARD} is truncated or corrupt", truncated_shard),
    Case("truncated shard, dumped", "dump_samples", ("--input={w}/samples",), f"{{w}}/{SHARD}", truncated_shard),
    # training
    Case("zero steps", "train", ("--config.train.steps=0",), "train.steps=0"),
    Case("micro_batch not dividing", "train", ("--config.train.global_batch=4", "--config.train.micro_batch=3"),
         "train.micro_batch=3"),
    Case("warmup beyond steps", "train", ("--config.train.warmup_steps=100",), "train.warmup_steps=100"),
    Case("negative learning rate", "train", ("--config.train.peak_learning_rate=-0.001",), "train.peak_learning_rate"),
    Case("unreadable checkpoint", "train", (), "checkpoint of step 2", unreadable_checkpoint),
    Case("no readable checkpoint, fallback on", "train", ("--config.train.restore_fallback=True",),
         "none of the training checkpoints", no_readable_checkpoint),
    Case("another run's training", "train", ("--config.seed=1",), "seed: 0 → 1"),
    Case("another run's checkpoints", "train", ("--config.seed=1",), "seed: 0 → 1", unfinished_training),
    # mesh
    Case("mesh axis 0", "train", ("--config.mesh.data=0",), "mesh.data=0"),
    Case("two -1 mesh axes", "train", ("--config.mesh.fsdp=-1",), "at most one axis may be -1"),
    Case("mesh larger than the devices", "train", ("--config.mesh.data=3",), "mesh data=3", unfinished_training),
    # evaluation
    Case("missing LiveCodeBench path", "evaluate",
         (*NO_SSD, "--config.eval.benchmark.name=livecodebench", "--config.eval.benchmark.path=/nonexistent"),
         "eval.benchmark.path='/nonexistent'"),
    Case("truncated LiveCodeBench file", "evaluate",
         (*NO_SSD, "--config.eval.benchmark.name=livecodebench", "--config.eval.benchmark.path={w}/lcb",
          "--config.eval.benchmark.release_version=release_v1"), "{w}/lcb/test.jsonl:2", truncated_livecodebench),
    Case("truncated HumanEval file", "evaluate", (*NO_SSD, "--config.eval.benchmark.path={w}/HumanEval.jsonl.gz"),
         "{w}/HumanEval.jsonl.gz", truncated_humaneval),
    Case("negative eval temperature", "evaluate", (*NO_SSD, "--config.eval.temperatures=(0.6, -0.5)"),
         "eval.temperatures[1]=-0.5"),
    Case("eval top_p above 1", "evaluate", (*NO_SSD, "--config.eval.top_p=1.5"), "eval.top_p=1.5"),
    Case("SSD model not trained", "evaluate", (), "eval.include_ssd=True", no_final_model),
    Case("truncated final model", "evaluate", ("--config.eval.include_base=False",), "{w}/train/final",
         truncated_final_model),
    # paths, config files and the pipeline
    Case("empty workdir", "sample", ("--config.workdir=",), "workdir=''"),
    Case("missing config file", "sample", (), "--config={w}/none.py", config="{w}/none.py"),
    Case("truncated config file", "sample", (), "--config={w}/config.py", truncated_config_file, config="{w}/config.py"),
    Case("unknown stage", "ssd", ("--config.stages=sample,tune",), "stages='sample,tune'"),
    Case("finished stage with other settings", "ssd", ("--config.stages=sample",), "{w}/samples holds a finished",
         finished_stage_with_other_settings),
]


# --- running them ---------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SSD_JAX_DEBUG"}
    env.update(PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    return env


def _command(case: Case, workdir: Path, *extra: str) -> list[str]:
    script = [sys.executable, str(REPO / "launch" / f"{case.launcher}.py")]
    if case.launcher == "dump_samples":
        return [*script, *(a.format(w=workdir) for a in case.args), *extra]
    train = TRAIN if case.launcher in ("train", "ssd") else []
    args = [f"--config={case.config}", f"--config.workdir={workdir}", *train, *case.args]
    return [*script, *(a.format(w=workdir) for a in args), *extra]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@dataclasses.dataclass
class Outcome:
    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


def _run(case: Case, prepared: Path, root: Path) -> Outcome:
    workdir = root / case.name.replace(" ", "_").replace(",", "").replace("'", "")
    shutil.copytree(prepared, workdir)
    if case.setup:
        case.setup(workdir)
    before = _digests(workdir)
    done = subprocess.run(_command(case, workdir), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    return Outcome(workdir, done.returncode, done.stdout, done.stderr, before, _digests(workdir))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Sample shards (2 chunks), checkpoints of steps 1 and 2 and the final model of a real
    2-step training run, and a tiny HF directory."""
    workdir = tmp_path_factory.mktemp("prepared")
    write_code_shards(workdir / "samples", 16)
    done = subprocess.run(_command(Case("prepare", "train", (), ""), workdir), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(workdir / "train" / "checkpoints")) == ["1", "2"]
    load_model("tiny-random").export_hf(str(workdir / "hf"))
    return workdir


@pytest.fixture(scope="module")
def outcomes(request, prepared, tmp_path_factory) -> dict[str, Outcome]:
    """The outcome of every selected case (`-k` selects), run two at a time."""
    selected = {item.callspec.params["case"].name for item in request.session.items
                if hasattr(item, "callspec") and "case" in item.callspec.params}
    root = tmp_path_factory.mktemp("cases")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.name: pool.submit(_run, case, prepared, root) for case in CASES if case.name in selected}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_naming_it(case, outcomes):
    outcome = outcomes[case.name]
    output = outcome.stdout + outcome.stderr
    errors = [line for line in outcome.stderr.splitlines() if line.startswith(f"{case.launcher}.py: error: ")]
    print("\n".join(errors))
    assert outcome.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert len(errors) == 1, output[-3000:]
    assert case.names.format(w=outcome.workdir) in errors[0]
    changed = {name for name, digest in outcome.before.items() if outcome.after.get(name) != digest}
    assert not changed, f"earlier outputs changed or removed: {sorted(changed)}"


def test_debug_flag_and_environment_variable_keep_the_traceback(tmp_path):
    case = Case("debug", "sample", ("--config.sampling.top_p=0",), "")
    for extra, env in ((["--debug"], {}), ([], {"SSD_JAX_DEBUG": "1"})):
        done = subprocess.run(_command(case, tmp_path, *extra), cwd=REPO, env={**_env(), **env},
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode != 0 and "Traceback" in done.stderr
        assert "ConfigError: sampling.top_p=0.0: must be in (0, 1]" in done.stderr


# --- the ways out that the errors name --------------------------------------------------------------


def test_rerunning_sampling_rebuilds_the_records_of_a_corrupt_shard(tmp_path):
    """A restarted writer sets its unreadable chunk aside and no longer counts its records as done."""
    records = [make_record(i, f"print({i})") for i in range(6)]
    with ShardWriter(tmp_path, process_shard_name(0), chunk_size=3) as writer:
        for record in records:
            writer.write(record)
    chunk = tmp_path / f"{process_shard_name(0)}-00001.arrayrecord"
    _cut(chunk)
    writer = ShardWriter(tmp_path, process_shard_name(0), chunk_size=3)
    assert [writer.is_done(*r.key) for r in records] == [True] * 3 + [False] * 3
    for record in records:
        writer.write(record)
    writer.close()
    assert sorted(r.key for r in read_records(tmp_path)) == sorted(r.key for r in records)
    assert (tmp_path / (chunk.name + CORRUPT_SUFFIX)).exists() and not chunk.exists()


def test_restore_fallback_resumes_from_the_checkpoint_before_an_unreadable_one(tmp_path):
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    opt_state = optax.adam(1e-3).init(params)
    data = grain.MapDataset.range(10).to_iter_dataset()
    checkpoints = TrainCheckpoints(str(tmp_path), {"run": 1}, keep=3, async_save=False)
    for step in (1, 2):
        checkpoints.save(step, jax_tree_scale(params, step), opt_state, iter(data))
    checkpoints.close()
    os.truncate(_largest_file(tmp_path / "2" / "params"), 10)

    refusing = TrainCheckpoints(str(tmp_path), {"run": 1}, keep=3)
    with pytest.raises(CheckpointRestoreError, match=r"step 2 .*restore_fallback=True .*\(step 1\)"):
        refusing.restore_latest(params, opt_state, iter(data), fallback=False)
    refusing.close()
    assert sorted(os.listdir(tmp_path)) == ["1", "2"]

    falling_back = TrainCheckpoints(str(tmp_path), {"run": 1}, keep=3)
    step, restored, _ = falling_back.restore_latest(params, opt_state, iter(data), fallback=True)
    assert step == 1 and falling_back.latest_step == 1
    assert jnp.array_equal(restored["w"], params["w"])
    falling_back.close()
    assert sorted(os.listdir(tmp_path)) == ["1", f"2{UNREADABLE_SUFFIX}"]


def jax_tree_scale(tree: dict, factor: float) -> dict:
    return {name: value * factor for name, value in tree.items()}


# --- the validation itself --------------------------------------------------------------------------


def test_every_shipped_config_passes_validation(tmp_path):
    """The configs in configs/ hold values in range (paths that point at data sets not on this
    machine are pointed at an empty stand-in)."""
    stand_in = tmp_path / "data"
    stand_in.mkdir()
    paths = sorted(REPO.glob("configs/*.py")) + sorted(REPO.glob("configs/paper/*.py"))
    checked = 0
    for path in paths:
        module = _load(path)
        if not hasattr(module, "get_config"):
            continue
        try:
            config = module.get_config()
        except NotImplementedError:  # the MoE rows say so themselves (tests/test_configs.py)
            continue
        for field in (config.prompts, config.eval.benchmark):
            if field.path:
                field.path = str(stand_in)
        if "/" in config.model:
            config.model = str(stand_in)
        validate_config(config, ["sample", "train"])
        config.eval.include_ssd = False
        validate_config(config, ["evaluate"])
        checked += 1
    assert checked >= 6


def test_greedy_threshold_is_the_samplers():
    assert GREEDY_TEMPERATURE == sampling_filter.GREEDY_TEMPERATURE


def test_unknown_field_in_a_config_file_is_named_with_a_suggestion():
    config = base.get_config()
    config.train.restore_fallbak = True
    with pytest.raises(ConfigError, match=r"^train.restore_fallbak: no such config field; did you mean "
                                          r"train.restore_fallback\?"):
        validate_config(config, ["sample"])


def _load(path: Path):
    from ssd_jax.sweeps import load_module

    return load_module(str(path))


def test_an_abandoned_checkpoint_read_is_not_reported_as_a_traceback(caplog):
    """asyncio reports each failed Orbax read that nobody awaited, with its traceback, when the
    task is collected; after a failed restore those reports go to the debug log, others stay."""
    import asyncio
    import logging

    from ssd_jax.training.checkpointing import _quiet_leftover_reads

    _quiet_leftover_reads()
    read = Exception("Encountered error while reading array index: (slice(0, 2, 1),). See full TensorStore details")

    def report(error):
        asyncio.new_event_loop().default_exception_handler(
            {"message": "Task exception was never retrieved", "exception": error})

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        report(read)
        assert not caplog.records
        report(ValueError("something else"))
        assert [r.getMessage().splitlines()[0] for r in caplog.records] == ["Task exception was never retrieved"]
