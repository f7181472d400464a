"""Argument types of the command line: a bad value is refused in one line, before any start."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def parsed(text: str, kind: Callable[[str], Number], what: str) -> Number:
    """`text` read as `kind`, or the one line argparse prints for it."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {what}: {text!r}") from None


def within(
    text: str, kind: Callable[[str], Number], low: Number, high: Number, span: str
) -> Number:
    """`text` read as `kind`, refused outside `low` to `high` (said as `span`)."""
    value = parsed(text, kind, "whole number" if kind is int else "number")
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {span}, not {text}")
    return value


def whole_number(text: str, least: int) -> int:
    value = parsed(text, int, "whole number")
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def count(text: str) -> int:
    """A number of rounds: 0 turns the loop off."""
    return whole_number(text, 0)


def positive_float(text: str) -> float:
    value = parsed(text, float, "number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def workflow_id(text: str) -> str:
    if not text or '"' in text:
        raise argparse.ArgumentTypeError(f"not a workflow id: {text!r}")
    return text


def schedule_id(text: str) -> str:
    if not SCHEDULE_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"not a schedule id: {text!r} (letters, digits, '.', '_' and '-', at most 100)"
        )
    return text


# Its runs are named <flow>-<id>-<time>: an id that reads well in a workflow id and a URL.
SCHEDULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
