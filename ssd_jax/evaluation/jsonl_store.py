"""Append-only JSONL files that survive being killed mid-write: the evaluator's samples and verdicts.

A resumed evaluation reads what a store holds and does only what is missing, so each record is
written once: a torn last line is dropped on reading and redone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable

from etils import epath

from ssd_jax.workdir import is_local


class JsonlStore:
    """Records appended one line each, on local disk or remote storage (gs://).

    Local: appended to one file and flushed (not fsynced: this survives a killed process, not a
    power cut); a torn last line (the process was killed while writing it) is dropped on
    reading, so resuming regenerates or regrades exactly that record. Remote storage cannot
    append: records are buffered and written as numbered part objects `<name>.part-NNNNNN`
    (each whole or absent) every `remote_batch` records, `remote_seconds` seconds and on
    `flush`; a kill loses at most the buffer, which a resume redoes.
    """

    def __init__(self, path: str | epath.PathLike, *, remote_batch: int = 256, remote_seconds: float = 30.0):
        self.path = epath.Path(path)
        self._local = is_local(self.path)
        self._buffer: list[str] = []
        self._remote_batch, self._remote_seconds = remote_batch, remote_seconds
        self._last_flush = time.monotonic()

    def _parts(self) -> list[epath.Path]:
        if not self.path.parent.exists():
            return []
        prefix = self.path.name + ".part-"
        return sorted(p for p in self.path.parent.iterdir() if p.name.startswith(prefix))

    def read(self) -> list[dict]:
        if not self._local:
            return [json.loads(line) for part in self._parts() for line in part.read_text().splitlines()
                    if line] + [json.loads(line) for line in self._buffer]
        if not self.path.exists():
            return []
        records, good_bytes = [], 0
        with open(self.path, "rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{self.path}: unreadable record {line[:200]!r}; fix or delete that line") from None
                good_bytes += len(line)
        if good_bytes != os.path.getsize(self.path):
            os.truncate(self.path, good_bytes)
        return records

    def append(self, records: Iterable[dict]) -> None:
        lines = [json.dumps(record) + "\n" for record in records]
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._local:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("".join(lines))  # flushed on close: a killed process loses at most a torn last line
            return
        self._buffer.extend(lines)
        if len(self._buffer) >= self._remote_batch or time.monotonic() - self._last_flush > self._remote_seconds:
            self.flush()

    def flush(self) -> None:
        """Writes buffered records (remote storage; local appends are already written)."""
        if self._buffer:
            parts = self._parts()
            number = int(parts[-1].name.rsplit("-", 1)[1]) + 1 if parts else 0
            self.path.with_name(f"{self.path.name}.part-{number:06d}").write_text("".join(self._buffer))
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def clear(self) -> None:
        self._buffer.clear()
        for path in [self.path, *self._parts()] if self.path.parent.exists() else []:
            if path.exists():
                path.unlink()
