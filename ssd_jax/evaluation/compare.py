"""Whether a test's actual output is right, by LiveCodeBench's rules.

Comparison happens in the evaluator, never inside the sandbox: the program only ever sees
its inputs, so it cannot read or forge the expected answers.
"""

from __future__ import annotations

import decimal
from typing import Any


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[decimal.Decimal] | None:
    try:
        return [decimal.Decimal(token) for token in line.split()]
    except (decimal.InvalidOperation, ValueError):
        return None


def stdout_matches(actual: str, expected: str) -> bool:
    """stdin tests: same number of lines after stripping the whole text; each stripped line
    equal, or else equal as whitespace-separated decimal numbers (so `0.50` matches `0.5`)."""
    actual_lines, expected_lines = _stripped_lines(actual), _stripped_lines(expected)
    if len(actual_lines) != len(expected_lines):
        return False
    for got, want in zip(actual_lines, expected_lines):
        if got == want:
            continue
        got_numbers, want_numbers = _decimals(got), _decimals(want)
        if got_numbers is None or want_numbers is None:
            return False
        try:
            if got_numbers != want_numbers:
                return False
        except decimal.InvalidOperation:  # signalling NaN
            return False
    return True


def value_matches(actual: Any, expected: Any) -> bool:
    """functional tests: the JSON-decoded return value (tuples already lists) equals the answer."""
    return actual == expected
