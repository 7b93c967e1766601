"""Resource limits of sandboxed code (one program run, or one graded sample), and their
translation into setrlimit values."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Limits:
    """What sandboxed code may use.

    `timeout_s` is the wall-clock time of one program run (`sandbox.run`) or of each test of a
    graded sample, enforced from outside by killing the whole process tree; CPU seconds
    (`RLIMIT_CPU`, per process) follow it with one second of slack as a second line of defence.
    `sample_timeout_s` bounds a whole graded sample (None: LiveCodeBench's bound, (timeout_s + 1)
    × tests + 5). `memory_mb` bounds the address space of every process (`RLIMIT_AS`),
    `max_processes` the processes and threads (`RLIMIT_NPROC`, counted inside the sandbox's own
    user namespace), `max_file_mb` any file it writes (`RLIMIT_FSIZE`) and the size of its
    private temp dir, `max_open_files` its descriptors (`RLIMIT_NOFILE`), `max_output_mb` what the
    evaluator reads back from it (stdout, stderr, captured test output) before killing it.
    """

    timeout_s: float = 6.0
    sample_timeout_s: float | None = None
    memory_mb: int = 4096
    max_processes: int = 64
    max_file_mb: int = 64
    max_open_files: int = 256
    max_output_mb: float = 32.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (value is None and field.name == "sample_timeout_s") and not value > 0:
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")

    @property
    def max_output_bytes(self) -> int:
        return int(self.max_output_mb * 1024 * 1024)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1024 * 1024

    def sample_deadline_s(self, num_tests: int) -> float:
        """Wall-clock seconds for a whole graded sample of `num_tests` tests."""
        return self.sample_timeout_s or (self.timeout_s + 1) * num_tests + 5

    def with_room_for(self, input_bytes: int) -> "Limits":
        """These limits with files large enough to hold a test input of `input_bytes` (inputs live in memfds)."""
        return dataclasses.replace(self, max_file_mb=max(self.max_file_mb, input_bytes // (1 << 20) + 2))

    def rlimits(self, cpu_s: float | None = None) -> dict[str, tuple[int, int]]:
        """`resource` constant name → (soft, hard), as the in-sandbox harness applies them; one
        process gets `cpu_s` CPU seconds (default `timeout_s`), plus one of slack."""
        cpu = math.ceil(self.timeout_s if cpu_s is None else cpu_s) + 1
        memory = self.memory_mb * 1024 * 1024
        return {
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_AS": (memory, memory),
            "RLIMIT_NPROC": (self.max_processes, self.max_processes),
            "RLIMIT_FSIZE": (self.max_file_bytes, self.max_file_bytes),
            "RLIMIT_NOFILE": (self.max_open_files, self.max_open_files),
            "RLIMIT_CORE": (0, 0),
        }
