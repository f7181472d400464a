"""When a schedule starts its flow, and what it does when runs overlap or were missed.

Checked here, before anything is sent: a cron expression the server would refuse, or
read differently from what the user meant, is one line and exit 2, not a schedule that
never fires.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from temporalio.client import ScheduleIntervalSpec, ScheduleOverlapPolicy, ScheduleSpec


class Overlap(StrEnum):
    """What a schedule does when its time comes and the run it started last still runs."""

    SKIP = "skip"  # start nothing; the next time after that run ends is considered
    BUFFER_ONE = "buffer-one"  # start one more as soon as it ends (further ones are dropped)
    CANCEL_OTHER = "cancel-other"  # cancel it (it saves what it did), then start the new one


OVERLAP_POLICIES = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.CANCEL_OTHER: ScheduleOverlapPolicy.CANCEL_OTHER,
}
# Times missed while the server was down are started when it is back only this far back:
# a morning run still happens after a short outage, a week of hourly runs does not.
DEFAULT_CATCHUP = timedelta(hours=1)
MIN_CATCHUP = timedelta(seconds=10)  # the server's own floor
# The shorthands the server reads as well as cron does (`@every` is --every).
CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
CRON_FIELDS = "minute hour day-of-month month day-of-week"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def cron_expression(text: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week) or an @daily-like alias.

    Six or seven fields are refused: cron tools read a sixth field as seconds, Temporal
    as the year, and a schedule that fires at another time than meant is worse than none.
    """
    expression = " ".join(text.split())
    if expression in CRON_ALIASES:
        return expression
    if expression.startswith("@every"):
        raise argparse.ArgumentTypeError(f"{text!r}: use --every for an interval, e.g. --every 15m")
    fields = expression.split(" ")
    if len(fields) != 5 or not _valid(expression):
        raise argparse.ArgumentTypeError(
            f"not a cron expression: {text!r} (five fields: {CRON_FIELDS}, e.g. '0 7 * * 1-5',"
            f" or one of {', '.join(sorted(CRON_ALIASES))})"
        )
    return expression


def _valid(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


def duration(text: str) -> timedelta:
    """90s, 15m, 1h30m, 1d: a length of time a person types."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 15m, 1h30m, 1d)")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    value = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
    return value


def catchup_window(text: str) -> timedelta:
    value = duration(text)
    if value < MIN_CATCHUP:
        raise argparse.ArgumentTypeError(f"must be at least 10s (the server's floor), not {text!r}")
    return value


def time_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"not a time zone: {text!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None
    return text


def schedule_spec(cron: list[str], every: list[timedelta], zone: str | None) -> ScheduleSpec:
    """The times of a schedule: every cron expression and interval given, in one zone."""
    return ScheduleSpec(
        cron_expressions=cron,
        intervals=[ScheduleIntervalSpec(every=interval) for interval in every],
        time_zone_name=zone,
    )


def describe_interval(every: timedelta) -> str:
    """An interval as --every takes it: 1h30m, 15m, 1d."""
    seconds = int(every.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
