"""The program that runs inside the sandbox: a trusted loop that runs untrusted code only in children.

Standard library only, and never imported by the evaluator: the sandbox's own interpreter
compiles it once (session.compiled_harness) and every sandbox starts from that code object,
because none of the evaluator's files are visible in there. It imports next to nothing
(interpreter start-up is most of a sample's cost).

Trust. This loop holds the two descriptors that talk to the evaluator: commands arrive on
`cmd_fd` as length-prefixed `marshal` frames (written by the evaluator), replies leave on
`reply_fd` as JSON lines. It never runs untrusted code itself. Each test (and each `program`)
runs in a forked child that first closes both descriptors, and this process makes itself
non-dumpable, so no child can reopen them through `/proc/<pid>/fd` or ptrace it. The loop
answers the evaluator from what it observes from outside the child: its exit status (from
`waitpid`) and the report the child left in a fresh memfd, forwarded as opaque base64 that
the evaluator decodes and judges itself. A report is only the program's own output or return
values, which the evaluator compares with answers the program never sees; nothing a child
writes is taken as a status.

Operations:
- `program`: run `code` once as `__main__` with the real stdin/stdout/stderr; this process then
  ends as the child ended (same exit status, or the same signal).
- `load`, then `test` repeatedly: grade one sample. The evaluator sends one test at a time
  (input or arguments only, never expected outputs); the child runs the program from scratch,
  then the test. A stdin test gets its input as a real file descriptor 0 (so `input()`,
  `sys.stdin.buffer`, `readlines()`, `open(0)` and `os.read(0, ...)` all work) and its output
  captured from `sys.stdout` up to a size cap; a functional test calls the function and
  reports its return value as JSON; a `calls` test (HumanEval) calls the entry point on each
  recorded argument list and reports each return value as a Python literal of plain data; a
  `check` test runs the data set's own check after the program.
"""

import _json
import binascii
import builtins
import io
import marshal
import os
import resource
import _signal  # the `signal` module would import enum, functools and collections
import sys
import time

ERROR_CHARS = 2000
# A child's exit statuses; any other status (or a signal) is a failure too.
EXIT_DONE, EXIT_RAISED, EXIT_MEMORY, EXIT_OUTPUT_LIMIT = 0, 1, 3, 4
_STATUS_OF_EXIT = {EXIT_DONE: "ok", EXIT_RAISED: "error", EXIT_MEMORY: "memory", EXIT_OUTPUT_LIMIT: "output_limit"}
PR_SET_DUMPABLE = 4
_real_exit = os._exit


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
        self.cmd_fd, self.reply_fd = cmd_fd, reply_fd
        os.set_inheritable(cmd_fd, False)
        os.set_inheritable(reply_fd, False)

    def receive(self):
        header = self.commands.read(8)
        if len(header) < 8:
            return None
        return marshal.loads(self.commands.read(int.from_bytes(header, "little")))

    def send(self, message):
        write_all(self.reply_fd, (to_json(message) + "\n").encode())

    def close(self):
        """Closes both descriptors (in a child, before any untrusted code runs)."""
        for fd in (self.cmd_fd, self.reply_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def write_all(fd, data):
    data = memoryview(data)
    while data:
        data = data[os.write(fd, data):]


def forbid_tracing():
    """Makes this process non-dumpable: other processes of the same user (the children) can then
    neither ptrace it nor open its descriptors through /proc/<pid>/fd."""
    import _ctypes  # ctypes itself costs ~10 ms to import

    class CInt(_ctypes._SimpleCData):
        _type_ = "i"

    class CFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    class Libc:
        _handle = _ctypes.dlopen(None)

    if CFunction(("prctl", Libc()))(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_DUMPABLE, 0) failed")


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


def to_literal(value):
    """A Python literal of `value` if it is plain data of exactly the built-in types (no
    subclasses, so no overridden `__eq__` or `__repr__`); TypeError otherwise. Infinities and
    NaN are written `inf` and `nan`, which the evaluator's reader accepts."""
    kind = type(value)
    if value is None or kind is bool:
        return repr(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return float.__repr__(value)
    if kind is str:
        return str.__repr__(value)
    if kind is bytes:
        return bytes.__repr__(value)
    if kind is list:
        return "[" + ", ".join(to_literal(item) for item in value) + "]"
    if kind is tuple:
        return "(" + "".join(to_literal(item) + ", " for item in value) + ")"
    if kind is set:
        return "{" + ", ".join(to_literal(item) for item in value) + "}" if value else "set()"
    if kind is dict:
        return "{" + ", ".join(to_literal(k) + ": " + to_literal(v) for k, v in value.items()) + "}"
    raise TypeError(f"{kind.__name__} is not plain data")


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


def raise_system_exit(status=0):
    """Stands in for os._exit so a program ending itself still reports its captured output."""
    raise SystemExit(status)


class Supervisor:
    """Runs untrusted code in children and says, from outside, how each ended."""

    def __init__(self, channel, sandboxed, report_cap):
        self.channel = channel
        self.sandboxed = sandboxed
        self.report_cap = report_cap

    def run(self, body):
        """Runs `body(report_fd) -> exit status` in a child whose evaluator descriptors are closed;
        returns (exit code, or -signal; the report it left, None if over the cap; wall seconds)."""
        report_fd = os.memfd_create("report")
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            status = EXIT_RAISED
            try:
                self.channel.close()  # from here on, nothing in this process can reach the evaluator
                os.setpgid(0, 0)
                status = body(report_fd)
            finally:
                _real_exit(status)
        _, wait_status = os.waitpid(pid, 0)
        wall_s = time.perf_counter() - start
        self.end_leftovers(pid)
        size = os.fstat(report_fd).st_size
        report = None if size > self.report_cap else os.pread(report_fd, size, 0) if size else b""
        os.close(report_fd)
        return os.waitstatus_to_exitcode(wait_status), report, wall_s

    def end_leftovers(self, pid):
        """Kills whatever the child left running: everything else in the sandbox's PID namespace
        (its init excepted), or without a sandbox the child's process group."""
        try:
            if self.sandboxed:
                os.kill(-1, _signal.SIGKILL)
            else:
                os.killpg(pid, _signal.SIGKILL)
        except OSError:
            pass


def child_status(code, report, report_cap):
    """(status, detail) of a test's child, from its exit code and the size of its report."""
    if report is None:
        return "output_limit", f"report over {report_cap} bytes"
    if code == -_signal.SIGXCPU:
        return "timeout", "CPU-seconds limit"
    if code < 0:
        return "killed", f"signal {-code}"
    return _STATUS_OF_EXIT.get(code, "error"), f"exit status {code}"


def write_report(fd, report):
    """The child's report, replacing anything the program wrote to the same descriptor."""
    data = to_json(report).encode()
    os.ftruncate(fd, 0)
    offset = 0
    while offset < len(data):
        offset += os.pwrite(fd, data[offset:], offset)


def run_program(supervisor, command):
    """`program`: plain execution in a child; this process then ends exactly as the child did."""
    code = compile(command["code"], "<program>", "exec")

    def body(report_fd):
        threads_before = live_threads()
        try:
            exec(code, {"__name__": "__main__", "__builtins__": builtins})
            status = 0
        except SystemExit as error:
            status = error.code if isinstance(error.code, int) else 0 if error.code is None else 1
            if not isinstance(error.code, int) and error.code is not None:
                sys.stderr.write(f"{error.code}\n")
        except BaseException as error:
            if isinstance(error, MemoryError):
                os.write(report_fd, b"memory")
            sys.stderr.write(short_traceback(error))
            status = 1
        join_new_threads(threads_before)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        return status & 0xFF

    code, report, _ = supervisor.run(body)
    if report == b"memory":
        supervisor.channel.send({"event": "memory"})
    if code >= 0:
        _real_exit(code)
    try:
        _signal.signal(-code, _signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL and SIGSTOP keep their default anyway
        pass
    os.kill(os.getpid(), -code)
    _real_exit(128 - code)


class Grader:
    """`load` then `test`s: one sample's program against one test at a time, each in a child."""

    def __init__(self, supervisor, command):
        self.supervisor = supervisor
        self.kind = command["kind"]
        self.output_cap = command["max_output_bytes"]
        self.func_name = command.get("func_name")
        prelude = command.get("prelude", "")
        self.prelude = compile(prelude, "<prelude>", "exec")
        self.code = compile(command["code"], "<solution>", "exec")
        exec(self.prelude, {"__name__": "prelude"})  # trusted (the evaluator's); warms the imports children share

    def run_test(self, command):
        """The reply for one test: how its child ended, observed from here, and its report as opaque
        base64 (so nothing the program wrote can add fields or lines to the reply)."""
        code, report, wall_s = self.supervisor.run(lambda report_fd: self._child(report_fd, command))
        status, detail = child_status(code, report, self.supervisor.report_cap)
        return {"index": command["index"], "status": status, "detail": detail, "wall_s": wall_s,
                "report": binascii.b2a_base64(report or b"", newline=False).decode("ascii")}

    def _child(self, report_fd, command):
        """Runs in the child: the program, then the test; writes the report, returns the exit status."""
        os._exit = raise_system_exit
        set_stdin(command.get("input", "").encode("utf-8", "surrogateescape"))
        stream, captured = capture_stdout(self.output_cap)
        threads_before = live_threads()
        report, status = {}, EXIT_DONE
        try:
            if self.kind == "stdin":
                self._run_module(exit_is_normal=True)
                join_new_threads(threads_before)
            elif self.kind == "functional":
                function = self._locate_function()
                report["value"] = json_value(function(*command["args"]))
            elif "calls" in command:
                namespace = self._run_module(exit_is_normal=False)
                function = namespace[command["entry_point"]]
                report["values"] = [literal_value(function(*args, **kwargs)) for args, kwargs in command["calls"]]
            else:
                namespace = self._run_module(exit_is_normal=False)
                exec(compile(command["check"], "<check>", "exec"), namespace)
                report["completed"] = True
        except MemoryError as error:
            status, report["error"] = EXIT_MEMORY, short_traceback(error)
        except OutputLimitExceeded as error:
            status, report["error"] = EXIT_OUTPUT_LIMIT, str(error)
        except BaseException as error:
            status, report["error"] = EXIT_RAISED, short_traceback(error)
        release_stdout(stream)
        if self.kind == "stdin":
            report["output"] = captured.getvalue().decode("utf-8", "replace")
        write_report(report_fd, report)
        return status

    def _run_module(self, exit_is_normal):
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(self.prelude, namespace)
        try:
            exec(self.code, namespace)
        except SystemExit as error:
            if not exit_is_normal:
                raise RuntimeError(f"program called exit({error.code!r}) before its checks finished")
        return namespace

    def _locate_function(self):
        namespace = {"__name__": "solution", "__builtins__": builtins}
        exec(self.prelude, namespace)
        exec(self.code, namespace)
        solution = namespace.get("Solution")
        if isinstance(solution, type):
            if not callable(getattr(solution, self.func_name, None)):
                raise AttributeError(f"class Solution has no method {self.func_name!r}")
            return lambda *args: getattr(solution(), self.func_name)(*args)
        if callable(namespace.get(self.func_name)):
            return namespace[self.func_name]
        raise NameError(f"no class Solution and no function {self.func_name!r} defined")


def json_value(value):
    """The return value as JSON data; an unserialisable value becomes one that compares unequal."""
    try:
        return RawJson(to_json(value))
    except (TypeError, ValueError, RecursionError):
        return {"__unserializable__": repr(value)[:ERROR_CHARS]}


def literal_value(value):
    """The return value as a Python literal, or a marker the evaluator reads as not plain data."""
    try:
        return to_literal(value)
    except (TypeError, ValueError, RecursionError) as error:
        return {"not_plain_data": str(error)[:ERROR_CHARS]}


def grade(supervisor, command):
    channel = supervisor.channel
    try:
        grader = Grader(supervisor, command)
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
    forbid_tracing()
    channel = Channel(config["cmd_fd"], config["reply_fd"])
    install_quitters()
    channel.send({"ready": True})
    command = channel.receive()
    if command is None:
        return
    apply_limits(command["rlimits"])
    supervisor = Supervisor(channel, config["sandboxed"], config["report_cap"])
    if command["op"] == "program":
        run_program(supervisor, command)
    else:
        grade(supervisor, command)


main()
