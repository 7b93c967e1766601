"""One running harness: start it isolated, talk to it, bound its output, kill its whole tree.

All I/O with the sandbox goes through one selector loop in the calling thread: stdin and
command bytes are written as the pipes accept them, stdout/stderr are read up to a cap (a
program printing a gigabyte is killed once it passes the cap, never buffered), and every wait
has a deadline after which the process group is SIGKILLed. In a bubblewrap sandbox, killing
bwrap tears down the PID namespace, so no descendant survives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import marshal
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from ssd_jax.evaluation.sandbox.isolation import Isolation
from ssd_jax.evaluation.sandbox.limits import Limits

# The harness is one program made of these files, in this order (it ends by calling its `main()`).
HARNESS_PARTS = ("harness_wire.py", "harness_lcb.py", "harness.py")
HARNESS_SOURCE = "\n\n".join(Path(__file__).with_name(part).read_text() for part in HARNESS_PARTS)
_BOOTSTRAP = "import marshal, sys; exec(marshal.loads(bytes.fromhex(sys.argv.pop(1))))"
_CHUNK = 1 << 16
_POLL_S = 0.05
_DRAIN_S = 1.0
STARTUP_TIMEOUT_S = 30.0
MARSHAL_VERSION = 4  # plain data reads the same in every Python 3 since 3.4


@functools.lru_cache(maxsize=None)
def compiled_harness(isolation: Isolation) -> str:
    """The harness compiled once by the sandbox's own interpreter (marshalled, hex): starting
    from the code object saves compiling 600 lines in every sandbox."""
    compile_it = "import marshal, sys; sys.stdout.write(marshal.dumps(compile(sys.stdin.read(), '<string>', 'exec')).hex())"
    with isolation.launch(["-I", "-S", "-c", compile_it], 1 << 20, ()) as launch:
        done = subprocess.run(launch.argv, input=HARNESS_SOURCE, capture_output=True, text=True, timeout=60,
                              **launch.popen_kwargs)
    if done.returncode != 0:
        raise SandboxCrashed(f"the sandbox's interpreter could not compile the harness: {done.stderr[-2000:]}")
    return done.stdout


class SandboxCrashed(RuntimeError):
    """The sandbox ended before its harness said it was ready: an infrastructure failure."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How the sandboxed process ended."""

    returncode: int
    stdout: bytes
    stderr: bytes
    wall_s: float
    kill_reason: str | None  # "timeout", "output_limit", or None if it ended by itself
    messages: tuple[dict, ...]  # harness messages nobody asked for (e.g. a memory event)


class Session:
    """A started harness. Use it as a context manager: the process never outlives the block."""

    def __init__(self, isolation: Isolation, limits: Limits, stdin: bool = False):
        self._stack = contextlib.ExitStack()
        cmd_read, cmd_write = os.pipe()
        reply_read, reply_write = os.pipe()
        report_cap = 2 * limits.max_output_bytes + (1 << 20)  # a test's output, JSON-escaped, and its error
        config = marshal.dumps({"cmd_fd": cmd_read, "reply_fd": reply_write, "sandboxed": isolation.sandboxed,
                                "report_cap": report_cap}).hex()
        try:
            python_args = ["-I", "-S", "-c", _BOOTSTRAP, compiled_harness(isolation), config]
            launch = self._stack.enter_context(
                isolation.launch(python_args, limits.max_file_bytes, (cmd_read, reply_write)))
            self.process = subprocess.Popen(
                launch.argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **launch.popen_kwargs,
            )
        except BaseException:
            for fd in (cmd_write, reply_read):
                os.close(fd)
            self._stack.close()
            raise
        finally:
            os.close(cmd_read)
            os.close(reply_write)
        self.started = time.monotonic()
        self.ready = False
        self.kill_reason: str | None = None
        self._ended: float | None = None
        self._selector = selectors.DefaultSelector()
        self._outgoing: dict[int, bytearray] = {}
        self._close_when_flushed: set[int] = set()
        self._incoming: dict[int, bytearray] = {}
        self._caps: dict[int, int] = {}
        self._unsolicited: list[dict] = []
        self._cmd_fd, self._reply_fd = cmd_write, reply_read
        self._stdin_fd = self.process.stdin.fileno() if stdin else None
        for fd in (self._cmd_fd, self._stdin_fd):
            if fd is not None:
                os.set_blocking(fd, False)
                self._outgoing[fd] = bytearray()
        output_cap = limits.max_output_bytes
        self._stdout_fd, self._stderr_fd = self.process.stdout.fileno(), self.process.stderr.fileno()
        for fd, cap in ((self._stdout_fd, output_cap), (self._stderr_fd, output_cap),
                        (self._reply_fd, report_cap * 4 // 3 + (1 << 20))):  # base64 of one report
            os.set_blocking(fd, False)
            self._incoming[fd] = bytearray()
            self._caps[fd] = cap
            self._selector.register(fd, selectors.EVENT_READ)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- talking to the harness ---------------------------------------------------------------
    def send(self, message: dict) -> None:
        """Queues a command: a little-endian 8-byte length, then the marshalled plain data."""
        frame = marshal.dumps(message, MARSHAL_VERSION)
        self._queue(self._cmd_fd, len(frame).to_bytes(8, "little") + frame)

    def send_stdin(self, data: bytes) -> None:
        """Queues the program's whole stdin; the pipe is closed once it is written."""
        self._queue(self._stdin_fd, data)
        self._close_when_flushed.add(self._stdin_fd)
        self._flush_closed_writers()

    def wait_ready(self, deadline: float) -> bool:
        """Waits until the harness has started; False (and the sandbox killed) if it never does."""
        while not self.ready:
            message = self._next_message()
            if message is not None:
                self._unsolicited.append(message)
                continue
            if self._reply_fd not in self._selector.get_map() or self.kill_reason is not None:
                return False
            if time.monotonic() >= deadline:
                self.kill("startup")
                return False
            self._pump(deadline)
        return True

    def receive(self, deadline: float) -> dict | None:
        """The next reply; None once the sandbox has ended or been killed (at `deadline`)."""
        while True:
            message = self._next_message()
            if message is not None:
                return message
            if self._reply_fd not in self._selector.get_map() or self.kill_reason is not None:
                return None
            if time.monotonic() >= deadline:
                self.kill("timeout")
                return None
            self._pump(deadline)

    def finish(self, deadline: float) -> Outcome:
        """Closes the command pipe, waits for the end (killing at `deadline`), reports it."""
        self._close_when_flushed.add(self._cmd_fd)
        self._flush_closed_writers()
        while self._reading() and self.kill_reason is None:
            if time.monotonic() >= deadline:
                self.kill("timeout")
                break
            if self._ended is not None and time.monotonic() > self._ended + _DRAIN_S:
                break  # exited, but an escaped descendant holds a pipe (unsandboxed runs only)
            self._pump(deadline)
        if self._ended is None:
            self._ended = time.monotonic()
        self._kill_group()
        returncode = self.process.wait()
        self._drain(time.monotonic() + _DRAIN_S)
        while (message := self._next_message()) is not None:
            self._unsolicited.append(message)
        if not self.ready and self.kill_reason in (None, "startup"):
            raise SandboxCrashed(
                f"sandbox exited with status {returncode} before its harness started: "
                f"{bytes(self._incoming[self._stderr_fd])[-2000:].decode(errors='replace')}")
        return Outcome(
            returncode=returncode,
            stdout=bytes(self._incoming[self._stdout_fd]),
            stderr=bytes(self._incoming[self._stderr_fd]),
            wall_s=self._ended - self.started,
            kill_reason=self.kill_reason,
            messages=tuple(self._unsolicited),
        )

    def kill(self, reason: str) -> None:
        """SIGKILLs the sandbox's process group; the first reason given is the one kept."""
        if self.kill_reason is None:
            self.kill_reason = reason
            self._ended = time.monotonic()
        self._kill_group()

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill(self.kill_reason or "closed")
        self.process.wait()
        for fd in list(self._selector.get_map()):
            self._selector.unregister(fd)
        self._selector.close()
        for fd in (self._cmd_fd, self._reply_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stack.close()

    # -- the selector loop --------------------------------------------------------------------
    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def _reading(self) -> bool:
        return any(fd in self._incoming for fd in self._selector.get_map())

    def _queue(self, fd: int | None, data: bytes) -> None:
        if fd is None or fd not in self._outgoing or not data:
            return
        if not self._outgoing[fd]:
            self._selector.register(fd, selectors.EVENT_WRITE)
        self._outgoing[fd] += data

    def _flush_closed_writers(self) -> None:
        for fd in list(self._close_when_flushed):
            if fd in self._outgoing and not self._outgoing[fd]:
                self._close_writer(fd)

    def _close_writer(self, fd: int) -> None:
        if fd in self._selector.get_map():
            self._selector.unregister(fd)
        self._outgoing.pop(fd, None)
        self._close_when_flushed.discard(fd)
        if fd == self._stdin_fd:
            self.process.stdin.close()
        else:
            os.close(fd)
            self._cmd_fd = -1

    def _pump(self, deadline: float) -> None:
        timeout = max(0.0, min(deadline - time.monotonic(), _POLL_S))
        for key, _ in self._selector.select(timeout):
            if key.fd in self._incoming:
                self._read(key.fd)
            else:
                self._write(key.fd)
        if self._ended is None and self.process.poll() is not None:
            self._ended = time.monotonic()

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        if not data:
            self._selector.unregister(fd)
            return
        buffer = self._incoming[fd]
        buffer += data
        if len(buffer) > self._caps[fd]:
            del buffer[self._caps[fd]:]
            self.kill("output_limit")

    def _write(self, fd: int) -> None:
        pending = self._outgoing[fd]
        try:
            written = os.write(fd, pending[:_CHUNK * 4])
        except BlockingIOError:
            return
        except OSError:  # the reader is gone (BrokenPipeError); nothing more can be delivered
            self._close_writer(fd)
            return
        del pending[:written]
        if not pending:
            self._selector.unregister(fd)
            if fd in self._close_when_flushed:
                self._close_writer(fd)

    def _drain(self, deadline: float) -> None:
        while self._reading() and time.monotonic() < deadline:
            for key, _ in self._selector.select(_POLL_S):
                if key.fd in self._incoming:
                    self._read(key.fd)

    def _next_message(self) -> dict | None:
        buffer = self._incoming[self._reply_fd]
        end = buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(buffer[:end])
        del buffer[:end + 1]
        try:
            message = json.loads(line)
        except ValueError:
            return {"protocol_error": line[:200].decode(errors="replace")}
        if not isinstance(message, dict):
            return {"protocol_error": repr(message)[:200]}
        if message.get("ready"):
            self.ready = True
            self.started = time.monotonic()  # wall time counts from the harness start, not bwrap's
            return self._next_message()
        return message
