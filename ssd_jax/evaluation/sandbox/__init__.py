"""Run one untrusted Python program in isolation and say how it ended.

`run(code, stdin, timeout_s, memory_mb)` starts a fresh bubblewrap sandbox (see
`isolation.py`) whose harness applies the resource limits of `limits.Limits` and then executes
`code` as `__main__` in a child process (see `harness.py`), with `stdin` on its standard input.
The result's `status` is one of:

- `ok`: exit status 0;  `error`: any other exit status (an uncaught exception, `exit(1)`);
- `timeout`: killed at the wall-clock limit, or by the CPU-seconds limit;
- `memory`: a MemoryError (the address-space limit);
- `killed`: ended by a signal, or killed for printing more than the output cap.
"""

from __future__ import annotations

import dataclasses
import signal
import time

from ssd_jax.evaluation.sandbox.isolation import Isolation, resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.evaluation.sandbox.session import STARTUP_TIMEOUT_S, Outcome, Session


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """How one program ended; `detail` says why when the status alone does not."""

    status: str
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    detail: str = ""
    sandboxed: bool = True


def signal_of(returncode: int, isolation: Isolation) -> int | None:
    """The signal that ended the program, if any (bwrap reports it as 128 + signal)."""
    if returncode < 0:
        return -returncode
    if isolation.sandboxed and returncode > 128:
        return returncode - 128
    return None


def classify(outcome: Outcome, isolation: Isolation, limits: Limits) -> tuple[str, str]:
    """(status, detail) for an ended run."""
    if outcome.kill_reason == "timeout":
        return "timeout", f"wall-clock limit of {limits.timeout_s:g}s"
    if outcome.kill_reason == "output_limit":
        return "killed", f"output passed {limits.max_output_mb:g} MiB"
    if any(message.get("event") == "memory" for message in outcome.messages) or \
            outcome.stderr.rstrip().endswith(b"MemoryError"):
        return "memory", f"address-space limit of {limits.memory_mb} MiB"
    number = signal_of(outcome.returncode, isolation)
    if number == signal.SIGXCPU:
        return "timeout", f"CPU-seconds limit of {limits.rlimits()['RLIMIT_CPU'][0]}s"
    if number is not None:
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return "killed", f"signal {name}"
    return ("ok", "") if outcome.returncode == 0 else ("error", f"exit status {outcome.returncode}")


def run(
    code: str,
    stdin: str = "",
    timeout_s: float = 10.0,
    memory_mb: int = 4096,
    *,
    limits: Limits | None = None,
    allow_unsandboxed: bool = False,
    python: str | None = None,
) -> ExecResult:
    """Runs `code` with `stdin` in a fresh sandbox; never raises for anything the program does.

    `limits` (if given) overrides `timeout_s` and `memory_mb`. Raises SandboxUnavailableError
    when no isolation works here and `allow_unsandboxed` is False.
    """
    limits = limits or Limits(timeout_s=timeout_s, memory_mb=memory_mb)
    isolation = resolve_isolation(allow_unsandboxed, python)
    with Session(isolation, limits, stdin=True) as session:
        session.send({"op": "program", "code": code, "rlimits": limits.rlimits()})
        session.send_stdin(stdin.encode("utf-8", "surrogateescape"))
        session.wait_ready(time.monotonic() + STARTUP_TIMEOUT_S)
        outcome = session.finish(time.monotonic() + limits.timeout_s)
    status, detail = classify(outcome, isolation, limits)
    return ExecResult(
        status=status,
        returncode=outcome.returncode,
        stdout=outcome.stdout.decode("utf-8", "replace"),
        stderr=outcome.stderr.decode("utf-8", "replace"),
        wall_s=outcome.wall_s,
        detail=detail,
        sandboxed=isolation.sandboxed,
    )
