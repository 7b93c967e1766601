"""The sample stage: records as specified, over-long prompts skipped, SIGKILL + restart = a clean run,
and a half-finished stage resumed with changed settings refused, naming the field."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssd_jax.data.prompt_format import DEFAULT_SYSTEM_MESSAGE
from ssd_jax.data.records import read_records
from ssd_jax.errors import InputError, SettingsChangedError
from ssd_jax.stages import run_stages
from ssd_jax.stages import sample as sample_stage
from ssd_jax.stages.sample import run as sample_from_config
from ssd_jax.sweeps import variant_config
from ssd_jax.workdir import Workdir

REPO = Path(__file__).resolve().parents[1]
PROMPTS, SAMPLES, NEW_TOKENS = 12, 2, 32


def write_prompts(path: Path, long_prompt_tokens: int = 0) -> Path:
    rows = [{"id": f"task-{i:02d}", "prompt": f"Write function number {i} " + "carefully " * (i % 3)}
            for i in range(PROMPTS)]
    if long_prompt_tokens:
        rows.append({"id": "too-long", "prompt": "x" * long_prompt_tokens})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def overrides(workdir: Path, prompts: Path) -> dict:
    return {"workdir": str(workdir), "prompts.source": "jsonl", "prompts.path": str(prompts),
            "prompts.limit": 0, "sampling.n_samples": SAMPLES, "sampling.max_new_tokens": NEW_TOKENS}


def config_with(values: dict):
    return variant_config(str(REPO / "configs" / "tiny.py"), values)


def by_key(records):
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys)), "duplicate records"
    return {r.key: r for r in records}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """One uninterrupted run, with one prompt longer than tiny-random's 4096-token context."""
    workdir = tmp_path_factory.mktemp("clean")
    prompts = write_prompts(workdir / "prompts.jsonl", long_prompt_tokens=5000)
    summary = sample_from_config(config_with(overrides(workdir, prompts)))
    return summary, by_key(read_records(Workdir(workdir).samples))


def test_records_hold_the_rendered_prompt_and_its_completion(clean_run):
    summary, records = clean_run
    assert summary.too_long == 1 and summary.prompts == PROMPTS + 1 and summary.already_done == 0
    assert set(records) == {(f"task-{i:02d}", s) for i in range(PROMPTS) for s in range(SAMPLES)}
    assert summary.written == len(records) and summary.completion_tokens == sum(
        r.completion_tokens for r in records.values())
    from ssd_jax.checkpoints import tiny as tiny_model

    template, tokenizer = tiny_model.tiny_chat_template(), tiny_model.tiny_tokenizer()
    for record in records.values():
        assert record.messages[0] == {"role": "system", "content": DEFAULT_SYSTEM_MESSAGE}
        assert record.prompt_text == template.render(record.messages, add_generation_prompt=True)
        assert record.prompt_tokens == len(tokenizer.encode(record.prompt_text))
        assert record.completion == tokenizer.decode(record.completion_token_ids)
        assert record.completion_tokens == len(record.completion_token_ids) <= NEW_TOKENS
        assert record.finish_reason in ("eos", "length") and record.model == "tiny-random"
        assert (record.temperature, record.top_k, record.top_p, record.seed) == (1.6, 20, 0.8, 0)


def test_a_killed_job_resumes_to_the_same_records_and_refuses_changed_settings(clean_run, tmp_path):
    """SIGKILL after the first chunk (one device); a resume with another temperature, model,
    token budget or compute dtype is refused before anything is written; one with the same
    sampling settings (eight devices and another `param_dtype` here) completes with nothing lost
    or duplicated."""
    _, expected = clean_run
    prompts = write_prompts(tmp_path / "prompts.jsonl", long_prompt_tokens=5000)
    values = overrides(tmp_path, prompts)
    flags = [f"--config.{field}={value}" for field, value in values.items()]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "PYTHONPATH": str(REPO)}
    job = subprocess.Popen([sys.executable, "launch/sample.py", "--config=configs/tiny.py", *flags], cwd=REPO,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = Workdir(tmp_path).samples
    deadline = time.monotonic() + 240
    while not list(shards.glob("*.arrayrecord")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job ended before it could be killed mid-run"
    partial = by_key(read_records(shards))
    assert 0 < len(partial) < len(expected)

    files = sorted(path.name for path in shards.iterdir())
    (tmp_path / "other-model").mkdir()  # the config is valid (the path exists); only the settings changed
    for field, value, message in [
        ("sampling.temperature", 1.2, "sampling.temperature: 1.6 → 1.2"),
        ("model", str(tmp_path / "other-model"), f'model: "tiny-random" → "{tmp_path / "other-model"}"'),
        ("sampling.max_new_tokens", NEW_TOKENS // 2, f"sampling.max_new_tokens: {NEW_TOKENS} → {NEW_TOKENS // 2}"),
        ("dtype", "bfloat16", 'dtype: "float32" → "bfloat16"'),
    ]:
        with pytest.raises(SettingsChangedError, match="half-finished 'sample' stage") as refused:
            run_stages(config_with({**values, field: value}), ["sample"])
        assert message in str(refused.value)
        assert sorted(path.name for path in shards.iterdir()) == files, "a refused resume writes nothing"

    # Training's master-weight dtype does not change a sample (stage 1 stores the weights in `dtype`).
    summary = run_stages(config_with({**values, "param_dtype": "bfloat16"}), ["sample"])["sample"]
    assert summary["already_done"] == len(partial) and summary["written"] == len(expected) - len(partial)
    resumed = by_key(read_records(shards))
    assert resumed.keys() == expected.keys()
    for key, record in expected.items():
        assert resumed[key].completion_token_ids == record.completion_token_ids, key
        assert resumed[key].completion == record.completion


def test_a_stage_recorded_with_a_retired_field_still_resumes(tmp_path):
    """Earlier versions recorded `param_dtype` in the sample stage's settings; it never changed a
    sample, so such a finished stage is still skipped, and a real change is still refused."""
    config = config_with({"workdir": str(tmp_path)})
    marker = Workdir(tmp_path).marker("sample")
    marker.parent.mkdir(parents=True)
    recorded = {**sample_stage.fingerprint(config), "param_dtype": "float32"}
    marker.write_text(json.dumps({"stage": "sample", "settings": recorded, "result": {"written": 7}}))
    assert run_stages(config, ["sample"])["sample"] == {"written": 7}
    with pytest.raises(SettingsChangedError, match="sampling.temperature: 1.6 → 1.2"):
        run_stages(config_with({"workdir": str(tmp_path), "sampling.temperature": 1.2}), ["sample"])


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="missing.jsonl"):
        sample_from_config(config_with(overrides(tmp_path, tmp_path / "missing.jsonl")))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no usable problems"):
        sample_from_config(config_with(overrides(tmp_path, tmp_path / "empty.jsonl")))
    unknown = subprocess.run(
        [sys.executable, "launch/sample.py", "--config=configs/tiny.py", "--config.sampling.temprature=1.0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False,
    )
    assert unknown.returncode != 0 and "temprature" in unknown.stderr
