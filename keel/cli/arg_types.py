"""Argument types of the command line: a bad value is refused in one line, before any start."""

from __future__ import annotations

import argparse
import re


def whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def count(text: str) -> int:
    """A number of rounds: 0 turns the loop off."""
    return whole_number(text, 0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
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
