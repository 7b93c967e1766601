"""The program that runs inside the sandbox: applies resource limits, then runs untrusted code.

Standard library only: its source is handed to the sandbox's interpreter with `-c`, because
none of the evaluator's files are visible in there. The evaluator talks to it with
newline-delimited JSON: commands arrive on descriptor `cmd_fd`, replies leave on `reply_fd`
(both named in `sys.argv[1]`). Operations:

- `program`: run `code` once as `__main__` with the real stdin/stdout/stderr pipes.
- `load`, then `test` repeatedly: grade one sample. The evaluator sends one test at a time
  (input or arguments only, never expected outputs) and decides pass/fail itself, so the
  program never sees later tests or any answer. Each stdin test gets its input as a real
  file descriptor 0 (so `input()`, `sys.stdin.buffer`, `readlines()`, `open(0)` and
  `os.read(0, ...)` all work) and its output captured from `sys.stdout` up to a size cap.
"""

import builtins
import io
import json
import os
import resource
import signal
import sys
import threading
import time

ERROR_CHARS = 2000


class OutputLimitExceeded(BaseException):
    """Raised in the program when its captured output passes the cap (not catchable as Exception)."""


class CappedBytes(io.BytesIO):
    """A BytesIO that refuses to grow past `cap` bytes."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap

    def write(self, data):
        if self.tell() + len(data) > self.cap:
            raise OutputLimitExceeded(f"output exceeds {self.cap} bytes")
        return super().write(data)


class Channel:
    def __init__(self, cmd_fd, reply_fd):
        self.commands = os.fdopen(cmd_fd, "rb")
        self.reply_fd = reply_fd
        os.set_inheritable(cmd_fd, False)
        os.set_inheritable(reply_fd, False)

    def receive(self):
        line = self.commands.readline()
        return json.loads(line) if line else None

    def send(self, message):
        data = memoryview((json.dumps(message) + "\n").encode())
        while data:
            data = data[os.write(self.reply_fd, data):]


def apply_limits(rlimits):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def install_quitters():
    """`exit()`/`quit()` as `site` would define them (the interpreter runs with -S)."""
    import _sitebuiltins

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


def short_traceback(error):
    """The traceback without the harness's own frames (its source is "<string>")."""
    try:
        import traceback  # only on failure: importing it costs a few ms per sandbox

        summary = traceback.TracebackException.from_exception(error)
        summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if f.filename != "<string>"])
        return "".join(summary.format())[-ERROR_CHARS:]
    except BaseException:  # e.g. no memory left to format it
        return repr(error)[-ERROR_CHARS:]


def run_program(channel, command):
    """`program`: plain execution, exit status and streams as a real interpreter gives them."""
    try:
        exec(compile(command["code"], "<program>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit:
        raise
    except BaseException as error:
        if isinstance(error, MemoryError):
            channel.send({"event": "memory"})
        sys.stderr.write(short_traceback(error))
        raise SystemExit(1)


def set_stdin(data):
    """Makes `data` the content of file descriptor 0 and of a fresh `sys.stdin`."""
    fd = os.memfd_create("stdin")  # 0 itself when the program closed its stdin
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdin = open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)


def capture_stdout(cap):
    """Points sys.stdout at a capped in-memory buffer; returns (text stream, byte buffer)."""
    buffer = CappedBytes(cap)
    sys.stdout = io.TextIOWrapper(buffer, encoding="utf-8", errors="backslashreplace", write_through=True)
    return sys.stdout, buffer


def release_stdout(stream):
    """Restores the real stdout; detaching keeps the captured buffer readable."""
    try:
        stream.flush()
    except BaseException:
        pass
    stream.detach()
    sys.stdout = sys.__stdout__


def join_new_threads(before):
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon and thread is not threading.current_thread():
            thread.join()


class Grader:
    """`load` then `test`s: one sample's program against one test at a time."""

    def __init__(self, command):
        os._exit = raise_system_exit
        self.kind = command["kind"]
        self.output_cap = command["max_output_bytes"]
        self.prelude = compile(command.get("prelude", ""), "<prelude>", "exec")
        self.code = compile(command["code"], "<solution>", "exec")
        self.function = None
        if self.kind == "functional":
            self.function = self._locate_function(command["func_name"])

    def _locate_function(self, name):
        namespace = {"__name__": "solution", "__builtins__": builtins}
        set_stdin(b"")
        stream, _ = capture_stdout(self.output_cap)
        try:
            exec(self.prelude, namespace)
            exec(self.code, namespace)
        finally:
            release_stdout(stream)
        solution = namespace.get("Solution")
        if isinstance(solution, type):
            if not callable(getattr(solution, name, None)):
                raise AttributeError(f"class Solution has no method {name!r}")
            return lambda *args: getattr(solution(), name)(*args)
        if callable(namespace.get(name)):
            return namespace[name]
        raise NameError(f"no class Solution and no function {name!r} defined")

    def run_test(self, command):
        set_stdin(command.get("input", "").encode("utf-8", "surrogateescape"))
        stream, captured = capture_stdout(self.output_cap)
        threads_before = set(threading.enumerate())
        reply = {"index": command["index"]}
        start = time.perf_counter()
        try:
            if self.kind == "functional":
                reply["value"] = to_json_value(self.function(*command["args"]))
            else:
                self._run_module(self.kind == "stdin")
                join_new_threads(threads_before)
            reply["status"] = "ok"
        except MemoryError as error:
            reply.update(status="memory", error=short_traceback(error))
        except OutputLimitExceeded as error:
            reply.update(status="output_limit", error=str(error))
        except BaseException as error:
            reply.update(status="error", error=short_traceback(error))
        reply["wall_s"] = time.perf_counter() - start
        release_stdout(stream)
        if self.kind == "stdin":
            reply["output"] = captured.getvalue().decode("utf-8", "replace")
        return reply

    def _run_module(self, exit_is_normal):
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(self.prelude, namespace)
        try:
            exec(self.code, namespace)
        except SystemExit as error:
            if not exit_is_normal:
                raise RuntimeError(f"program called exit({error.code!r}) before its checks finished")


def raise_system_exit(status=0):
    """Stands in for os._exit so a program ending itself still reports its captured output."""
    raise SystemExit(status)


def to_json_value(value):
    """The return value as JSON data (tuples become lists); unserialisable values stay unequal."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return {"__unserializable__": repr(value)[:ERROR_CHARS]}


def grade(channel, command):
    try:
        grader = Grader(command)
    except MemoryError as error:
        channel.send({"loaded": False, "status": "memory", "error": short_traceback(error)})
        return
    except BaseException as error:
        channel.send({"loaded": False, "status": "error", "error": short_traceback(error)})
        return
    channel.send({"loaded": True})
    while True:
        command = channel.receive()
        if command is None:
            return
        channel.send(grader.run_test(command))


def main():
    config = json.loads(sys.argv[1])
    channel = Channel(config["cmd_fd"], config["reply_fd"])
    for module in config.get("preload", ()):
        __import__(module)
    install_quitters()
    channel.send({"ready": True})
    command = channel.receive()
    if command is None:
        return
    apply_limits(command["rlimits"])
    if command["op"] == "program":
        run_program(channel, command)
    else:
        grade(channel, command)


main()
