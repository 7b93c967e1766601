"""The harness's wire formats: the evaluator channel (and what keeps children off it), and plain
data written as JSON or as Python literals.

Part of the one program the sandbox runs (see harness.py: the parts are concatenated in the
order of session.HARNESS_PARTS and compiled once), so standard library only, and light imports.
A child's report is plain data written here and judged by the evaluator, never by the harness.
"""

import _json
import marshal
import os

ERROR_CHARS = 2000
PR_SET_DUMPABLE = 4


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


def write_report(fd, report):
    """The child's report, replacing anything the program wrote to the same descriptor."""
    data = to_json(report).encode()
    os.ftruncate(fd, 0)
    offset = 0
    while offset < len(data):
        offset += os.pwrite(fd, data[offset:], offset)
