"""The `livecodebench` runner's test children: programs run as LiveCodeBench's runner runs them.

Part of the one program the sandbox runs (see harness.py: the parts are concatenated in the
order of session.HARNESS_PARTS), so standard library only; the names it uses from the other
parts (`run_guarded`, `set_stdin`, `TestTimedOut`, `literal_value`, …) are defined there.

It follows `lcb_runner/evaluation/testing_util.py` of LiveCodeBench. Every program runs after
its `reliability_guard` (`os.kill`, `os.fork`, `os.getcwd`, `subprocess.Popen`, … set to None,
`import resource` failing, `quit` None), then:
- stdin (`grade_stdio`): a trailing `if __name__ == '__main__':` block is unwrapped, every
  statement but the imports moves into `wrapped_function()`, the module runs as `tmp_sol`, and
  the function is called with `sys.stdin` a `StringIO` of the input (`open`,
  `sys.stdin.readline/readlines/read` patched as it patches them, file descriptor 0 empty as in
  its worker processes) and `sys.stdout` a `StringIO` whose text is the test's output. One
  child per test, as with the `robust` runner.
- functional (`grade_call_based`, `compile_code`, `get_function`): the program runs once as a
  fresh module `tmp_sol` after the import prelude; if its text contains `class Solution`, one
  `Solution()` is made, and its method (else the module's function) is looked up once and
  called on every test in turn, so state the program keeps in its instance or module carries
  from one test to the next, as there. Each test's arguments are one JSON value per line,
  passed positionally; a tuple result becomes a list. Output goes nowhere (LiveCodeBench does
  not read it). The loading and every call run under LiveCodeBench's per-test alarm: an error
  whose repr names `TimeoutException` is a timeout (a `TimeoutException` the program catches
  is not, as there; a program can also cancel it, as there). All of a sample's tests
  therefore run in ONE child, which stops at the first error, bounded from outside only for the
  whole sample (wall clock and CPU seconds: LiveCodeBench's (timeout + 1) × tests + 5). Since
  the answers stay outside, a wrong value does not stop the child; the evaluator stops at it
  when it judges. The child reports the return value of each call, in order, as a Python literal of
  plain data (see `as_builtin`), and the evaluator compares them with the expected answers
  (with `==`) outside the sandbox, so the program never sees them. A sample passes only if
  every value matches and the child exited with status 0 (from `waitpid`).
"""

import builtins
import io
import os
import sys
import _signal


class CappedText(io.StringIO):
    """A StringIO that refuses to grow past `cap` characters (LiveCodeBench captures into a StringIO)."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap

    def write(self, text):
        if self.tell() + len(text) > self.cap:
            raise OutputLimitExceeded(f"output exceeds {self.cap} characters")
        return super().write(text)


# LiveCodeBench's `reliability_guard`, which its runner applies before running any program:
# these attributes become None, these modules cannot be imported, `quit` and `help` are None.
_GUARDED_ATTRIBUTES = {
    "os": ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
           "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
           "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"),
    "shutil": ("rmtree", "move", "chown"),
    "subprocess": ("Popen",),
}
_HIDDEN_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")


def lcb_prepare(code, kind):
    """In the harness, once per sample: the modules the runner's children need imported before
    they fork (LiveCodeBench's runner has them imported when a program starts): unittest.mock
    for stdin, and shutil and subprocess where the program names them, so its guard reaches them."""
    if kind == "stdin":
        import unittest.mock  # noqa: F401 (imports subprocess too)
    for name in ("shutil", "subprocess"):
        if name in code:
            __import__(name)


def lcb_reliability_guard():
    """Applies LiveCodeBench's `reliability_guard` in a child, before the program runs."""
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for module_name, attributes in _GUARDED_ATTRIBUTES.items():
        module = sys.modules.get(module_name)
        for attribute in attributes if module is not None else ():
            setattr(module, attribute, None)
    for module_name in _HIDDEN_MODULES:
        sys.modules[module_name] = None


def lcb_wrapped_program(code):
    """LiveCodeBench's `clean_if_name` then `make_function` (its import prelude comes separately):
    imports stay at module level, every other statement becomes the body of `wrapped_function`.
    Code that does not parse is returned unchanged, as there (compiling it then fails)."""
    import ast

    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:
        pass
    try:
        tree = ast.parse(code)
        imports = [stmt for stmt in tree.body if isinstance(stmt, (ast.Import, ast.ImportFrom))]
        others = [stmt for stmt in tree.body if not isinstance(stmt, (ast.Import, ast.ImportFrom))]
        function = ast.FunctionDef(
            name="wrapped_function",
            args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=others, decorator_list=[], lineno=-1,
        )
        return ast.unparse(imports) + "\n" + ast.unparse(function)
    except Exception:
        return code


def lcb_call_method(method, inputs):
    """LiveCodeBench's `call_method`: the same patches, applied in the same order."""
    from unittest.mock import mock_open, patch

    lines = iter(inputs.split("\n"))

    @patch("builtins.open", mock_open(read_data=inputs))
    @patch("sys.stdin", io.StringIO(inputs))
    @patch("sys.stdin.readline", lambda *args: next(lines))
    @patch("sys.stdin.readlines", lambda *args: inputs.split("\n"))
    @patch("sys.stdin.read", lambda *args: inputs)
    def inner(_method):
        try:
            return _method()
        except SystemExit:
            pass

    return inner(method)


def lcb_stdin_test(grader, inputs, report):
    """One stdin test as `grade_stdio` runs it; returns the child's exit status."""
    set_stdin(b"")  # fd 0 and the real sys.stdin: empty, like a multiprocessing worker's /dev/null
    captured = sys.stdout = CappedText(grader.output_cap)
    lcb_reliability_guard()

    def body(report):
        namespace = {"__name__": "tmp_sol", "__builtins__": builtins}
        exec(grader.prelude, namespace)
        exec(grader.code, namespace)
        lcb_call_method(namespace["wrapped_function"], inputs)

    status = run_guarded(body, report)
    sys.stdout = sys.__stdout__
    report["output"] = captured.getvalue()
    return status


# Built-in type → its value of an instance of a subclass, read without the subclass's own methods.
_BASE_VALUE = {int: int.__int__, float: float.__float__, str: str.__str__, list: list.copy,
               tuple: lambda value: tuple.__getitem__(value, slice(None)), dict: dict.copy}


def as_builtin(value):
    """`value` with every instance of a subclass of a built-in type that compares with plain data
    as its base type does (its `__eq__` is the base's, as for defaultdict or a namedtuple; or
    Counter or OrderedDict, which compare with a plain dict as dicts do) made an instance of the
    base type, at any depth. Other objects stay as they are (and are then not plain data)."""
    kind = type(value)
    if kind not in _BASE_VALUE:
        base = next((base for base in _BASE_VALUE if isinstance(value, base)), None)
        collections = sys.modules.get("collections")
        dict_like = collections is not None and kind in (collections.Counter, collections.OrderedDict)
        if base is None or kind is bool or (kind.__eq__ is not base.__eq__ and not dict_like):
            return value
        value, kind = _BASE_VALUE[base](value), base
    if kind in (list, tuple):
        return kind(as_builtin(item) for item in value)
    if kind is dict:
        return {as_builtin(key): as_builtin(item) for key, item in value.items()}
    return value


def lcb_literal(value):
    """A call's return value as the report carries it: a Python literal of plain data, or a marker."""
    try:
        return literal_value(as_builtin(value))
    except Exception as error:  # e.g. too deep, or an object that only claims a built-in class
        return {"not_plain_data": f"{type(error).__name__}: {str(error)[:ERROR_CHARS]}"}


class TimeoutException(Exception):
    """LiveCodeBench's alarm exception: its runner tells a timeout by this name in the error's repr."""


def lcb_alarm(signum, frame):
    raise TimeoutException


def lcb_alarm_in(seconds):
    """Arms (or with 0, cancels) the per-test alarm, as LiveCodeBench's `signal.alarm` does."""
    _signal.setitimer(_signal.ITIMER_REAL, seconds)


def lcb_call_suite(grader, suite, report):
    """Every test of a functional sample as `grade_call_based` runs them, in this one child;
    `report["values"]` gets each call's return value. Returns the child's exit status."""
    set_stdin(b"")
    sys.stdout = open(os.devnull, "w")
    _signal.signal(_signal.SIGALRM, lcb_alarm)
    lcb_reliability_guard()
    values = report["values"] = []

    def body(report):
        lcb_alarm_in(grader.timeout_s)
        try:
            module = type(sys)("tmp_sol", "")
            exec(grader.prelude, module.__dict__)
            exec(grader.code, module.__dict__)
            solution = module.Solution() if grader.defines_solution else module
        finally:
            lcb_alarm_in(0)
        method = getattr(solution, grader.func_name)
        for args in suite:
            lcb_alarm_in(grader.timeout_s)
            try:
                prediction = method(*args)
            except Exception as error:
                if "timeoutexception" in repr(error).lower():
                    raise TestTimedOut(f"{repr(error)[:ERROR_CHARS]}: the per-test alarm of {grader.timeout_s:g}s")
                raise
            finally:
                lcb_alarm_in(0)
            if isinstance(prediction, tuple):
                prediction = list(prediction)
            values.append(lcb_literal(prediction))

    return run_guarded(body, report)
