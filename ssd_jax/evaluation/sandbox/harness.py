"""The program that runs inside the sandbox: applies resource limits, then runs untrusted code.

Standard library only, and never imported by the evaluator: the sandbox's own interpreter
compiles it once (session.compiled_harness) and every sandbox starts from that code object,
because none of the evaluator's files are visible in there. It imports next to nothing
(interpreter start-up is most of a sample's cost): commands arrive on descriptor `cmd_fd` as
length-prefixed `marshal` frames (written by the evaluator, so trusted), replies leave on
`reply_fd` as JSON lines (parsed by the evaluator with `json.loads`, so a program writing
garbage there cannot do more than fail). Operations:

- `program`: run `code` once as `__main__` with the real stdin/stdout/stderr pipes.
- `load`, then `test` repeatedly: grade one sample. The evaluator sends one test at a time
  (input or arguments only, never expected outputs) and decides pass/fail itself, so the
  program never sees later tests or any answer. Each stdin test gets its input as a real
  file descriptor 0 (so `input()`, `sys.stdin.buffer`, `readlines()`, `open(0)` and
  `os.read(0, ...)` all work) and its output captured from `sys.stdout` up to a size cap.
"""

import _json
import builtins
import io
import marshal
import os
import resource
import _signal  # the `signal` module would import enum, functools and collections
import sys
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
        header = self.commands.read(8)
        if len(header) < 8:
            return None
        return marshal.loads(self.commands.read(int.from_bytes(header, "little")))

    def send(self, message):
        data = memoryview((to_json(message) + "\n").encode())
        while data:
            data = data[os.write(self.reply_fd, data):]


class RawJson(str):
    """Text that is already JSON (encoded once, embedded as is)."""


def to_json(value):
    """JSON text for plain data, as json.dumps writes it (tuples as lists, number keys as
    strings); TypeError for anything else. Avoids importing json (and re) in here."""
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                if key is not None and not isinstance(key, (int, float)):
                    raise TypeError(f"key {key!r} is not JSON")
                key = to_json(key).strip('"')
            items.append(_json.encode_basestring_ascii(key) + ": " + to_json(item))
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON")


def apply_limits(rlimits):
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
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


def live_threads():
    """The program's threads; threading is only imported by programs that start threads."""
    threading = sys.modules.get("threading")
    return set(threading.enumerate()) if threading else set()


def join_new_threads(before):
    """Waits for non-daemon threads the program started, as interpreter exit would."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
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
        threads_before = live_threads()
        reply = {"index": command["index"]}
        start = time.perf_counter()
        try:
            if self.kind == "functional":
                reply["value"] = json_value(self.function(*command["args"]))
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


def json_value(value):
    """The return value as JSON data; an unserialisable value becomes one that compares unequal."""
    try:
        return RawJson(to_json(value))
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
    config = marshal.loads(bytes.fromhex(sys.argv[1]))
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)  # as LiveCodeBench's evaluator sets it
    channel = Channel(config["cmd_fd"], config["reply_fd"])
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
