"""Sample records and their shards: JSON records in ArrayRecord files, one schema for every shard.

A shard directory holds complete chunk files `<shard_name>-<NNNNN>.arrayrecord`. A
`ShardWriter` buffers records and writes each chunk to `<file>.tmp`, then renames it into
place, so a chunk is either complete or absent. A restarted writer deletes its own leftover
`.tmp` files, reads every complete chunk in the directory to learn which
(prompt_id, sample_index) keys are done, skips those, and continues numbering after its last
chunk: nothing is duplicated, and what was lost (the unflushed buffer) is simply not done.
On a multi-host job every process writes its own shard name (`process_shard_name`).

The directory may be local or remote (`gs://`, through `etils.epath`). ArrayRecord reads and
writes local files only, so a remote chunk is written locally and uploaded whole (an object
appears complete or not at all), and remote shards are copied to a local cache before reading.

A chunk that cannot be read back (truncated or corrupted on disk) is a `CorruptShardError`
naming the file. A restarted writer moves its own unreadable chunks aside
(`<file>.corrupt`, kept for inspection) and treats their records as not done, so re-running
sampling with the same command rebuilds exactly the records that were lost.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import os
import re
import tempfile
from typing import Any

import grain
from absl import logging
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter
from etils import epath

from ssd_jax.errors import InputError
from ssd_jax.reading import root_cause
from ssd_jax.workdir import is_local, local_copy

SHARD_SUFFIX = ".arrayrecord"
TMP_SUFFIX = ".tmp"
CORRUPT_SUFFIX = ".corrupt"
_WRITER_OPTIONS = "group_size:1"  # one record per chunk group: cheap random access for Grain
_SHARD_NAME = re.compile(r"[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*")


@dataclasses.dataclass(frozen=True)
class SampleRecord:
    """One sampled completion of one prompt, with everything needed to train on or audit it."""

    prompt_id: str
    sample_index: int
    messages: list[dict[str, str]]
    prompt_text: str
    completion: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "eos" | "stop" | "length"
    temperature: float
    top_k: int
    top_p: float
    model: str
    seed: int
    source: str = ""
    completion_token_ids: list[int] = dataclasses.field(default_factory=list)
    process_index: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.prompt_id, self.sample_index)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> SampleRecord:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        unknown = sorted(set(data) - set(fields))
        if missing or unknown:
            raise ValueError(f"{where}: not a SampleRecord (missing {missing}, unknown {unknown})")
        return cls(**data)

    @classmethod
    def from_json(cls, raw: bytes, where: str = "record") -> SampleRecord:
        return cls.from_dict(json.loads(raw), where)


class CorruptShardError(InputError):
    """A sample shard that cannot be read back: truncated, or its bytes damaged."""

    def __init__(self, path: str | epath.PathLike, error: Exception):
        self.path = str(path)
        super().__init__(
            f"sample shard {path} is truncated or corrupt ({root_cause(error)}); re-run sampling with the "
            "same command (launch/sample.py or launch/ssd.py) and it rebuilds the records that are missing"
        )


def process_shard_name(process_index: int, prefix: str = "samples") -> str:
    """The shard name for one process of a (multi-host) job, e.g. `samples-process00003`."""
    return f"{prefix}-process{process_index:05d}"


def _chunk_pattern(shard_name: str, suffix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(shard_name)}-(\d+){re.escape(suffix)}")


def shard_files(directory: str | epath.PathLike) -> list[epath.Path]:
    """Every complete shard chunk in `directory`, sorted by name; `InputError` if there is none."""
    directory = epath.Path(directory)
    if not directory.is_dir():
        raise InputError(f"sample shard directory not found: {directory}; run sampling first (launch/sample.py) "
                         "or point config.data.samples_dir at the shards")
    files = sorted(directory.glob(f"*{SHARD_SUFFIX}"))
    if not files:
        raise InputError(
            f"no sample shards (*{SHARD_SUFFIX}) in {directory}; has sampling written anything? "
            "Run it (launch/sample.py) with the same config"
        )
    return files


def local_shard_paths(files: list[epath.Path]) -> list[str]:
    """Local file names for `files` (ArrayRecord and Grain read local files only): remote
    shards are copied once to the local cache (`ssd_jax.workdir.local_copy`)."""
    return [local_copy(path) for path in files]


def _read_file(path: str, where: epath.Path) -> list[SampleRecord]:
    """The records of the local file `path` (a copy of `where`); `CorruptShardError` naming `where`."""
    try:  # the ArrayRecord reader reports a damaged file as RuntimeError
        reader = ArrayRecordReader(path)
        try:
            raw_records = reader.read_all()
        finally:
            reader.close()
    except RuntimeError as error:
        raise CorruptShardError(where, error) from error
    try:
        return [SampleRecord.from_json(raw, f"{where}[{i}]") for i, raw in enumerate(raw_records)]
    except ValueError as error:  # includes JSON and UTF-8 decoding errors
        raise CorruptShardError(where, error) from error


def read_records(directory: str | epath.PathLike) -> list[SampleRecord]:
    """All records of all shards in `directory`, in file-name order, then write order."""
    files = shard_files(directory)
    return [record for local, path in zip(local_shard_paths(files), files) for record in _read_file(local, path)]


def done_keys(directory: str | epath.PathLike) -> set[tuple[str, int]]:
    """The (prompt_id, sample_index) keys already written; empty for a new or empty dir."""
    directory = epath.Path(directory)
    if not directory.is_dir() or not any(directory.glob(f"*{SHARD_SUFFIX}")):
        return set()
    return {record.key for record in read_records(directory)}


class ShardWriter:
    """Writes `SampleRecord`s to `<directory>/<shard_name>-NNNNN.arrayrecord`, resumably.

    `write` skips (and returns False for) any key already in the directory or written by this
    writer. Records become durable `chunk_size` at a time, and on `flush`/`close`. One writer
    per shard name at a time; use `process_shard_name(jax.process_index())` on multi-host.
    """

    def __init__(self, directory: str | epath.PathLike, shard_name: str, *, chunk_size: int = 256):
        if not _SHARD_NAME.fullmatch(shard_name):
            raise ValueError(f"shard_name {shard_name!r}: use letters, digits, '_', '.', '-'")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.directory = epath.Path(directory)
        self.shard_name = shard_name
        self.chunk_size = chunk_size
        self.directory.mkdir(parents=True, exist_ok=True)
        complete = _chunk_pattern(shard_name, SHARD_SUFFIX)
        partial = _chunk_pattern(shard_name, SHARD_SUFFIX + TMP_SUFFIX)
        chunks = []
        for path in self.directory.iterdir():
            if partial.fullmatch(path.name):
                path.unlink()  # the chunk this shard was writing when its job died
            elif match := complete.fullmatch(path.name):
                chunks.append(int(match.group(1)))
        self._next_chunk = max(chunks, default=-1) + 1
        self._done = self._readable_done_keys(complete)
        self._buffer: list[SampleRecord] = []

    def _readable_done_keys(self, own_chunk: re.Pattern[str]) -> set[tuple[str, int]]:
        """The keys of every readable chunk; this shard's unreadable chunks are moved aside (their
        records will be written again), other shards' are left to their own writers."""
        done = set()
        for path in sorted(self.directory.glob(f"*{SHARD_SUFFIX}")):
            try:
                done.update(record.key for record in _read_file(local_copy(path), path))
            except CorruptShardError as error:
                if own_chunk.fullmatch(path.name):
                    path.rename(path.with_name(path.name + CORRUPT_SUFFIX))
                    logging.warning("%s: moved aside to %s%s; its records will be sampled again",
                                    error.path, path.name, CORRUPT_SUFFIX)
                else:
                    logging.warning("%s: another shard's writer rebuilds it", error)
        return done

    def is_done(self, prompt_id: str, sample_index: int) -> bool:
        return (prompt_id, sample_index) in self._done

    def write(self, record: SampleRecord) -> bool:
        """Buffers `record` unless its key is done; flushes a full chunk. True if accepted."""
        if record.key in self._done:
            return False
        self._done.add(record.key)
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_size:
            self.flush()
        return True

    def flush(self) -> None:
        """Writes the buffered records as one complete chunk (atomic rename)."""
        if not self._buffer:
            return
        final = self.directory / f"{self.shard_name}-{self._next_chunk:05d}{SHARD_SUFFIX}"
        local = is_local(final)
        staging = tempfile.TemporaryDirectory(prefix="ssd_jax_chunk_") if not local else None
        tmp = str(final) + TMP_SUFFIX if local else os.path.join(staging.name, final.name)
        writer = ArrayRecordWriter(tmp, _WRITER_OPTIONS)
        for record in self._buffer:
            writer.write(record.to_json())
        writer.close()
        if local:
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, final)
        else:  # one upload: the object is complete or absent
            with open(tmp, "rb") as written:
                final.write_bytes(written.read())
            staging.cleanup()
        self._next_chunk += 1
        self._buffer.clear()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SampleRecordSource:
    """Random access over every record in a shard directory, for Grain (returns dicts)."""

    def __init__(self, directory: str | epath.PathLike):
        self.files = shard_files(directory)
        self.paths = local_shard_paths(self.files)
        counts = []
        for path, where in zip(self.paths, self.files):  # a truncated file fails here, a damaged record when read
            try:
                reader = ArrayRecordReader(path)
                counts.append(reader.num_records())
                reader.close()
            except RuntimeError as error:
                raise CorruptShardError(where, error) from error
        self._ends = list(itertools.accumulate(counts))
        self._source = grain.sources.ArrayRecordDataSource(self.paths)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return json.loads(self._source[index])
        except (RuntimeError, ValueError) as error:  # ValueError: bytes that are not JSON
            raise CorruptShardError(self.files[bisect.bisect_right(self._ends, index)], error) from error

    def __repr__(self) -> str:
        return f"SampleRecordSource({len(self.paths)} files, {len(self)} records)"
