"""Append-only JSONL files that survive being killed mid-write (evaluation samples, verdicts)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


class JsonlStore:
    """Records appended one line each (flushed, not fsynced: this survives a killed process,
    not a power cut); a torn last line (the process was killed while writing
    it) is dropped on reading, so resuming regenerates or regrades exactly that record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records, good_bytes = [], 0
        with self.path.open("rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{self.path}: unreadable record {line[:200]!r}; fix or delete that line") from None
                good_bytes += len(line)
        if good_bytes != self.path.stat().st_size:
            os.truncate(self.path, good_bytes)
        return records

    def append(self, records: Iterable[dict]) -> None:
        data = "".join(json.dumps(record) + "\n" for record in records)
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(data)  # flushed on close: a killed process loses at most a torn last line

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
