"""Reading a file the user pointed at: a failure to parse it becomes an `InputError` naming it.

Used at the few places where a run reads a user-given file or directory (prompts, benchmark,
model), so that a truncated or malformed file is one line naming the config field, the file
and the fix, while the original exception stays chained for `--debug`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ssd_jax.errors import InputError, SsdJaxError

# What parsers raise on bad bytes: ValueError (JSON, UTF-8, pyarrow's ArrowInvalid, our own
# readers' messages), OSError (gzip.BadGzipFile, unreadable files), EOFError (a cut gzip stream).
PARSE_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError)


def root_cause(error: BaseException) -> str:
    """`Type: first line` of the innermost exception behind `error`, where the input was found wanting."""
    while True:
        inner = error.__cause__ if error.__cause__ is not None else (
            None if error.__suppress_context__ else error.__context__)  # `raise ... from None` ends the chain
        if inner is None:
            break
        error = inner
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else f"{type(error).__name__} without a message"


@contextlib.contextmanager
def reading(field: str, path: object, fix: str, errors: tuple[type[BaseException], ...] = PARSE_ERRORS) -> Iterator[None]:
    """Inside the block, `errors` become `InputError("<field>=<path>: cannot be read (...); <fix>")`."""
    try:
        yield
    except SsdJaxError:
        raise
    except errors as error:
        raise InputError(f"{field}={path}: cannot be read ({root_cause(error)}); {fix}") from error
