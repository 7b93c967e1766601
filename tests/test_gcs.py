"""A run whose work directory and base model live on Google Cloud Storage, against a local GCS
double on 127.0.0.1 that honours generation preconditions as GCS does (tests/gcs_double.py): the
tiny pipeline end to end, every output in the bucket, nothing in a local `gs:` directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import gcsfs
import jax
import numpy as np
import portpicker
import pytest
import tensorstore as ts
from etils import epath
from flax import nnx

from ssd_jax import load_model

REPO = Path(__file__).resolve().parents[1]
RUN, MODEL = "gs://bucket/run", "gs://bucket/models/tiny-hf"
PROMPTS, STEPS = 4, 2


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """A GCS double with bucket `bucket`; the environment that points gcsfs (epath) and
    tensorstore (Orbax) at it."""
    port = portpicker.pick_unused_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    server = subprocess.Popen([sys.executable, str(REPO / "tests" / "gcs_double.py"), str(port), "bucket"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    env = {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "double"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.terminate()
        server.wait(timeout=30)


def test_the_double_honours_the_preconditions_tensorstore_and_gcsfs_use(gcs):
    """TensorStore writes an OCDBT manifest only if its generation is the one it read; gcsfs
    creates a file exclusively with ifGenerationMatch=0. A stand-in that ignored either would let
    the pipeline test below pass on behaviour a real bucket refuses."""
    store = ts.KvStore.open({"driver": "gcs", "bucket": "bucket", "path": "preconditions/"}).result()
    first = store.write("manifest", b"one").result().generation
    assert store.read("manifest").result().stamp.generation == first, "a read reports the object's generation"
    second = store.write("manifest", b"two", if_equal=first).result().generation
    assert second not in (b"", first), "a write whose generation matches succeeds with a new generation"
    assert store.write("manifest", b"stale", if_equal=first).result().generation == b"", "a stale write is refused"
    assert store.read("manifest", if_not_equal=second).result().state == "unspecified", "not modified since"
    assert store.read("manifest").result().value == b"two"

    fs = gcsfs.GCSFileSystem()
    fs.pipe("bucket/preconditions/once", b"first", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe("bucket/preconditions/once", b"second", mode="create")
    assert fs.cat("bucket/preconditions/once") == b"first"
    info = fs.info("bucket/preconditions/once")
    assert int(info["generation"]) > 0 and info["metageneration"] == "1"


def _params(loaded) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(loaded.model, nnx.Param))]


def test_the_pipeline_runs_with_workdir_and_model_on_gcs(gcs, tmp_path, monkeypatch):
    monkeypatch.setenv("SSD_JAX_CACHE", str(tmp_path / "cache"))
    reference = load_model("tiny-random")
    reference.export_hf(str(tmp_path / "tiny-hf"))
    for file in (tmp_path / "tiny-hf").iterdir():
        (epath.Path(MODEL) / file.name).write_bytes(file.read_bytes())
    for ours, truth in zip(_params(load_model(MODEL)), _params(reference), strict=True):
        np.testing.assert_array_equal(ours, truth)

    env = {**os.environ, **gcs, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    command = [sys.executable, str(REPO / "launch" / "ssd.py"), f"--config={REPO / 'configs' / 'tiny.py'}",
               f"--config.workdir={RUN}", f"--config.model={MODEL}", f"--config.prompts.limit={PROMPTS}",
               "--config.sampling.n_samples=1", "--config.sampling.max_new_tokens=8", f"--config.train.steps={STEPS}",
               "--config.train.warmup_steps=1", "--config.train.checkpoint_every=1", "--config.data.read_threads=1",
               "--config.train.async_checkpointing=False",
               "--config.eval.benchmark.limit=2", "--config.eval.temperatures=(1.0,)", "--config.eval.n_samples=1",
               "--config.eval.max_new_tokens=8"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    run = epath.Path(RUN)
    for stage in ("samples", "train", "eval", "report"):
        assert json.loads((run / stage / "COMPLETE").read_text())["settings"]["model"] == MODEL
    shards = [p.name for p in (run / "samples").iterdir() if p.name.endswith(".arrayrecord")]
    assert shards == ["samples-process00000-00000.arrayrecord"]
    metrics = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in metrics] == list(range(1, STEPS + 1))
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "train").iterdir())
    assert sorted(p.name for p in (run / "train" / "checkpoints").iterdir()) == ["1", "2"]
    assert (run / "train" / "final" / "ssd_model.json").exists()
    results = json.loads((run / "eval" / "results.json").read_text())
    assert sorted(results["models"]) == ["base", "ssd"]
    assert results["models"]["ssd"]["ref"] == f"{RUN}/train/final"
    assert results["models"]["base"]["temperatures"]["1"]["num_problems"] == 2
    assert len((run / "eval" / "process00000" / "verdicts.jsonl.part-000000").read_text().splitlines()) == 4
    assert json.loads((run / "ssd_report.json").read_text())["num_problems"] == 1  # the split headline scores half
    trained = load_model(f"{RUN}/train/final")
    assert any(not np.array_equal(a, b) for a, b in zip(_params(trained), _params(reference), strict=True))

    local = [path for root in (tmp_path, REPO) for path in root.rglob("gs:*")]
    assert not local, f"written to local directories instead of the bucket: {local}"
