"""Sample shards: schema round trip, crash-safe resumable writing, Grain reading, JSONL dump."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import grain
import pytest
from array_record.python.array_record_module import ArrayRecordWriter

from ssd_jax.data.records import (
    SampleRecord,
    SampleRecordSource,
    ShardWriter,
    done_keys,
    process_shard_name,
    read_records,
)
from ssd_jax.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def make_record(prompt_index: int, sample_index: int = 0, process_index: int = 0) -> SampleRecord:
    prompt = f"Write function number {prompt_index}."
    return SampleRecord(
        prompt_id=f"p{prompt_index:03d}",
        sample_index=sample_index,
        messages=[{"role": "system", "content": "Python please."}, {"role": "user", "content": prompt}],
        prompt_text=f"<|user|>{prompt}<|assistant|>",
        completion=f"```python\ndef f{prompt_index}():\n    return {sample_index}  # é\n```",
        prompt_tokens=12 + prompt_index,
        completion_tokens=9,
        finish_reason=("eos", "stop", "length")[prompt_index % 3],
        temperature=1.6,
        top_k=20,
        top_p=0.8,
        model="smollm2-135m-instruct",
        seed=1234,
        source="offline",
        completion_token_ids=[5, 6, prompt_index],
        process_index=process_index,
    )


def test_record_json_round_trip():
    record = make_record(4, 2)
    assert SampleRecord.from_json(record.to_json()) == record
    assert record.key == ("p004", 2)


def test_record_from_dict_names_missing_and_unknown_fields():
    data = make_record(1).to_dict()
    del data["completion"]
    data["colour"] = "blue"
    with pytest.raises(ValueError, match=r"row 7: .*missing \['completion'\].*unknown \['colour'\]"):
        SampleRecord.from_dict(data, "row 7")


def test_write_then_read_in_order(tmp_path):
    records = [make_record(i, s) for i in range(7) for s in range(2)]
    with ShardWriter(tmp_path, "samples", chunk_size=4) as writer:
        assert all(writer.write(r) for r in records)
    assert read_records(tmp_path) == records
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"samples-{i:05d}.arrayrecord" for i in range(4)]


def test_writer_skips_keys_already_written(tmp_path):
    with ShardWriter(tmp_path, "samples") as writer:
        assert writer.write(make_record(1))
        assert not writer.write(make_record(1))
    with ShardWriter(tmp_path, "samples") as writer:
        assert writer.is_done("p001", 0) and not writer.is_done("p001", 1)
        assert not writer.write(make_record(1))
        assert writer.write(make_record(1, 1))
    assert [r.key for r in read_records(tmp_path)] == [("p001", 0), ("p001", 1)]


def test_interrupted_job_resumes_without_duplicates_or_loss(tmp_path):
    """A job dies after two complete chunks, in the middle of writing a third (a .tmp left
    behind) and with records still buffered; the restarted job redoes exactly what is missing."""
    wanted = [make_record(i) for i in range(10)]
    writer = ShardWriter(tmp_path, "samples", chunk_size=3)
    for record in wanted[:7]:
        writer.write(record)  # chunks 0 and 1 complete; records 6.. only buffered
    partial = ArrayRecordWriter(str(tmp_path / "samples-00002.arrayrecord.tmp"), "group_size:1")
    partial.write(wanted[6].to_json())  # the crash: never closed, never renamed
    del writer, partial

    assert done_keys(tmp_path) == {r.key for r in wanted[:6]}
    with ShardWriter(tmp_path, "samples", chunk_size=3) as resumed:
        assert not (tmp_path / "samples-00002.arrayrecord.tmp").exists()
        written = [r for r in wanted if resumed.write(r)]
    assert written == wanted[6:]
    assert sorted(read_records(tmp_path), key=lambda r: r.prompt_id) == wanted


def test_process_shards_share_a_directory(tmp_path):
    for process in range(2):
        with ShardWriter(tmp_path, process_shard_name(process), chunk_size=2) as writer:
            for i in range(process, 6, 2):
                writer.write(make_record(i, process_index=process))
    (tmp_path / "samples-process00001-00009.arrayrecord.tmp").write_bytes(b"partial")
    ShardWriter(tmp_path, process_shard_name(0))  # must not delete process 1's partial chunk
    assert (tmp_path / "samples-process00001-00009.arrayrecord.tmp").exists()
    records = read_records(tmp_path)
    assert sorted(r.prompt_id for r in records) == [f"p{i:03d}" for i in range(6)]
    assert {r.process_index for r in records if int(r.prompt_id[1:]) % 2} == {1}


def test_missing_or_empty_directory_errors(tmp_path):
    with pytest.raises(InputError, match="not found: .*nope"):
        read_records(tmp_path / "nope")
    with pytest.raises(InputError, match="no sample shards"):
        SampleRecordSource(tmp_path)
    assert done_keys(tmp_path / "nope") == set()


def test_grain_source_reads_every_record(tmp_path):
    records = [make_record(i, s) for i in range(5) for s in range(3)]
    for process in range(2):
        with ShardWriter(tmp_path, process_shard_name(process), chunk_size=4) as writer:
            for record in records[process::2]:
                writer.write(record)
    source = SampleRecordSource(tmp_path)
    assert len(source) == len(records)
    assert [SampleRecord.from_dict(source[i]) for i in range(len(source))] == read_records(tmp_path)
    dataset = grain.MapDataset.source(pickle.loads(pickle.dumps(source))).shuffle(seed=3)
    seen = [SampleRecord.from_dict(item) for item in dataset]
    assert sorted(seen, key=lambda r: r.key) == sorted(records, key=lambda r: r.key)


def run_dump(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, str(REPO / "launch" / "dump_samples.py"), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_dump_samples_writes_jsonl_equal_to_the_records(tmp_path):
    records = [make_record(i, s) for i in range(4) for s in range(2)]
    with ShardWriter(tmp_path / "shards", "samples", chunk_size=3) as writer:
        for record in records:
            writer.write(record)
    to_file = run_dump(f"--input={tmp_path / 'shards'}", f"--output={tmp_path / 'out.jsonl'}")
    assert to_file.returncode == 0, to_file.stderr
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [SampleRecord.from_dict(json.loads(line)) for line in lines] == records
    to_stdout = run_dump(f"--input={tmp_path / 'shards'}")
    assert to_stdout.returncode == 0 and to_stdout.stdout.splitlines() == lines


def test_dump_samples_fails_clearly_on_a_missing_directory(tmp_path):
    result = run_dump(f"--input={tmp_path / 'absent'}")
    assert result.returncode == 1
    assert "sample shard directory not found" in result.stderr
