"""Resource limits for one sandboxed program, and their translation into setrlimit values."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one sandboxed interpreter may use.

    `timeout_s` is wall-clock time, enforced from outside by killing the whole process tree;
    CPU seconds (`RLIMIT_CPU`) follow it with one second of slack as a second line of defence.
    `memory_mb` bounds the address space of every process (`RLIMIT_AS`), `max_processes` the
    processes and threads (`RLIMIT_NPROC`, counted inside the sandbox's own user namespace),
    `max_file_mb` any file it writes (`RLIMIT_FSIZE`) and the size of its private temp dir,
    `max_open_files` its descriptors (`RLIMIT_NOFILE`), `max_output_mb` what the evaluator
    reads back from it (stdout, stderr, captured test output) before killing it.
    """

    timeout_s: float = 10.0
    memory_mb: int = 4096
    max_processes: int = 64
    max_file_mb: int = 64
    max_open_files: int = 256
    max_output_mb: float = 32.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"Limits.{field.name} must be positive, got {getattr(self, field.name)!r}")

    @property
    def max_output_bytes(self) -> int:
        return int(self.max_output_mb * 1024 * 1024)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1024 * 1024

    def with_timeout(self, timeout_s: float) -> "Limits":
        return dataclasses.replace(self, timeout_s=timeout_s)

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """`resource` constant name → (soft, hard), as the in-sandbox harness applies them."""
        cpu = math.ceil(self.timeout_s) + 1
        memory = self.memory_mb * 1024 * 1024
        return {
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_AS": (memory, memory),
            "RLIMIT_NPROC": (self.max_processes, self.max_processes),
            "RLIMIT_FSIZE": (self.max_file_bytes, self.max_file_bytes),
            "RLIMIT_NOFILE": (self.max_open_files, self.max_open_files),
            "RLIMIT_CORE": (0, 0),
        }
