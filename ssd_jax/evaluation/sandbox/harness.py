"""The program that runs inside the sandbox: a trusted loop that runs untrusted code only in children.

Standard library only, and never imported by the evaluator: the sandbox's own interpreter
compiles it once (session.compiled_harness) and every sandbox starts from that code object,
because none of the evaluator's files are visible in there. It is three files concatenated in
the order of session.HARNESS_PARTS: harness_wire.py (the channel and data formats),
harness_lcb.py (the `livecodebench` runner's children), then this one, which ends by calling
`main()`. It imports next to nothing (interpreter start-up is most of a sample's cost).

Trust. This loop holds the two descriptors that talk to the evaluator: commands arrive on
`cmd_fd` as length-prefixed `marshal` frames (written by the evaluator), replies leave on
`reply_fd` as JSON lines. It never runs untrusted code itself. Each test (and each `program`)
runs in a forked child that first closes both descriptors, and this process makes itself
non-dumpable, so no child can reopen them through `/proc/<pid>/fd` or ptrace it. The loop
answers the evaluator from what it observes from outside the child: its exit status (from
`waitpid`) and the report the child left in a fresh memfd, forwarded as opaque base64 that
the evaluator decodes and judges itself. A report is only the program's own output or return
values (and, on failure, its error), which the evaluator compares with answers the program
never sees; nothing a child writes is taken as a status.

Operations:
- `program`: run `code` once as `__main__` with the real stdin/stdout/stderr; this process then
  ends as the child ended (same exit status, or the same signal).
- `load`, then `test` repeatedly: grade one sample. The evaluator sends one test at a time
  (input or arguments only, never expected outputs); the child runs the program from scratch,
  then the test. With the `robust` runner a stdin test gets its input as a real file
  descriptor 0 (so `input()`, `sys.stdin.buffer`, `readlines()`, `open(0)` and
  `os.read(0, ...)` all work) and its output captured from `sys.stdout` up to a size cap, and
  a functional test calls `Solution().<func_name>` (or the function) on a fresh instance and
  reports its return value as JSON; a `calls` test (HumanEval) calls the entry point on each
  recorded argument list and reports each return value as a Python literal of plain data; a
  `check` test runs the data set's own check after the program. With the `livecodebench`
  runner, programs run as LiveCodeBench's runner runs them (see harness_lcb.py); its
  functional samples arrive as one `test` holding every test's arguments (a `suite`).
"""

import binascii
import builtins
import io
import marshal
import os
import resource
import _signal  # the `signal` module would import enum, functools and collections
import sys
import time

# A child's exit statuses; any other status (or a signal) is a failure too.
EXIT_DONE, EXIT_RAISED, EXIT_MEMORY, EXIT_OUTPUT_LIMIT, EXIT_TIMEOUT = 0, 1, 3, 4, 5
_STATUS_OF_EXIT = {EXIT_DONE: "ok", EXIT_RAISED: "error", EXIT_MEMORY: "memory", EXIT_OUTPUT_LIMIT: "output_limit",
                   EXIT_TIMEOUT: "timeout"}
_real_exit = os._exit


class OutputLimitExceeded(BaseException):
    """Raised in the program when its captured output passes the cap (not catchable as Exception)."""


class TestTimedOut(BaseException):
    """Raised in a child when a runner's own per-test alarm ended a test (not catchable as Exception)."""


class CappedBytes(io.BytesIO):
    """A BytesIO that refuses to grow past `cap` bytes."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap

    def write(self, data):
        if self.tell() + len(data) > self.cap:
            raise OutputLimitExceeded(f"output exceeds {self.cap} bytes")
        return super().write(data)


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


def run_program(supervisor, command):
    """`program`: plain execution in a child; this process then ends exactly as the child did."""

    def body(report_fd):
        threads_before = live_threads()
        try:
            exec(compile(command["code"], "<program>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
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


def run_guarded(action, report):
    """Runs `action(report)` in a test's child: the child's exit status for how it ended, and on
    failure its error in `report`."""
    try:
        action(report)
        return EXIT_DONE
    except MemoryError as error:
        report["error"] = short_traceback(error)
        return EXIT_MEMORY
    except OutputLimitExceeded as error:
        report["error"] = str(error)
        return EXIT_OUTPUT_LIMIT
    except TestTimedOut as error:
        report["error"] = str(error)
        return EXIT_TIMEOUT
    except BaseException as error:
        report["error"] = short_traceback(error)
        return EXIT_RAISED


class Grader:
    """`load` then `test`s: one sample's program against one test at a time, each in a child."""

    def __init__(self, supervisor, command):
        self.supervisor = supervisor
        self.kind = command["kind"]
        self.output_cap = command["max_output_bytes"]
        self.func_name = command.get("func_name")
        self.lcb = command.get("runner") == "livecodebench" and self.kind in ("stdin", "functional")
        self.timeout_s = command.get("timeout_s")
        self.defines_solution = "class Solution" in command["code"]  # LiveCodeBench's test of a LeetCode program
        prelude = command.get("prelude", "")
        self.prelude = compile(prelude, "<prelude>", "exec")
        source = lcb_wrapped_program(command["code"]) if self.lcb and self.kind == "stdin" else command["code"]
        self.code = compile(source, "<solution>", "exec")
        exec(self.prelude, {"__name__": "prelude"})  # trusted (the evaluator's); warms the imports children share
        if self.lcb:
            lcb_prepare(command["code"], self.kind)

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
        report = {}
        if self.lcb and self.kind == "stdin":
            status = lcb_stdin_test(self, command.get("input", ""), report)
        elif self.lcb:
            status = lcb_call_suite(self, command["suite"], report)
        else:
            status = self._robust_test(command, report)
        write_report(report_fd, report)
        return status

    def _robust_test(self, command, report):
        """The program as `__main__` (stdin), or its function called (functional), with a real fd 0."""
        set_stdin(command.get("input", "").encode("utf-8", "surrogateescape"))
        stream, captured = capture_stdout(self.output_cap)
        threads_before = live_threads()

        def body(report):
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

        status = run_guarded(body, report)
        release_stdout(stream)
        if self.kind == "stdin":
            report["output"] = captured.getvalue().decode("utf-8", "replace")
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
