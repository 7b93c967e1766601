"""Decoding LiveCodeBench's compressed private tests without trusting pickle.

The data set stores large private test lists as base64 → zlib → pickle → JSON string. A plain
`pickle.loads` would run whatever the file says; this unpickler resolves no globals at all,
so only the built-in plain-data opcodes (str, bytes, int, float, bool, None, list, tuple,
dict, set) can be built, and anything else stops with an error.
"""

from __future__ import annotations

import base64
import io
import pickle
import zlib

PLAIN_TYPES = (str, bytes, int, float, bool, type(None), list, tuple, dict, set, frozenset)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something other than plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only plain data (str, bytes, numbers, lists, dicts, "
            f"tuples) may appear in a test-case pickle")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {pid!r} in a test-case pickle")


def loads_plain(data: bytes):
    """Unpickles `data`, accepting plain data only."""
    value = PlainDataUnpickler(io.BytesIO(data)).load()
    _check_plain(value)
    return value


def _check_plain(value) -> None:
    if not isinstance(value, PLAIN_TYPES):
        raise UnsafePickleError(f"unexpected {type(value).__name__} in a test-case pickle")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key)
            _check_plain(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item)


def decode_compressed(text: str):
    """base64 → zlib → restricted pickle; returns the unpickled plain value."""
    return loads_plain(zlib.decompress(base64.b64decode(text.encode("ascii"))))
