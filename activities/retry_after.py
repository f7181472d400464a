"""`Retry-After`, read once for every HTTP client the activities use.

A server that says when to come back is honoured through the ApplicationError's
`next_retry_delay`, so Temporal's next attempt waits that long instead of its backoff.
RFC 9110 allows either a number of seconds or an HTTP date.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol


class _Response(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after(response: _Response, now: datetime | None = None) -> timedelta | None:
    """The wait the response asks for; None when it names none (or nonsense)."""
    value = (response.headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return timedelta(seconds=max(seconds, 0.0))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return timedelta(seconds=seconds)
