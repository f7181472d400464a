"""A provider account's rate limit, shared by every worker: a booking ledger, as pure code.

A limit allows `requests_per_minute` requests and `tokens_per_minute` tokens in any
window of `window_seconds` (scaled: 60 a minute in a 10 s window is 10 in any 10 s).
Every call books a time to send at before it is sent: the ledger gives the earliest
time at which the request and its tokens fit in every window that holds it, and never
a time before one already given, so the calls go out first come, first served. A
caller waits until its time, then sends; it never asks again, so a full limit costs
one round trip a call, not a poll loop.

Each entry counts for `window_seconds + margin_seconds`: a request booked for time t
reaches the provider a little later, by a delay that differs from call to call, and
the margin keeps two such arrivals one window apart as the provider sees them.

A call's tokens are booked as estimated (prompt and the most the answer may hold, as
providers count them when the request arrives) and corrected to what it used once it
answers. A `Retry-After` from the provider closes the ledger until then: no booking
is given a time before it, on any worker.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, model_validator

from keel.payloads.admission import Admission

# The entity workflow's stable names (see workflows/rate_limiter.py); renaming any of
# them breaks running limiters.
RATE_LIMITER_WORKFLOW = "RateLimiterWorkflow"
BOOK_UPDATE = "book"
SETTLE_UPDATE = "settle"
BACK_OFF_UPDATE = "back_off"
LEDGER_QUERY = "ledger"
# A booking further ahead than this is refused: the caller's activity would outlive it.
MAX_WAIT = timedelta(minutes=10)


def rate_limiter_id(scope: str, label: str) -> str:
    """One limiter per scope (the task queue) and provider/model."""
    return f"ratelimit-{scope}-{label.replace('/', '-')}"


class RateLimit(BaseModel):
    """One model's limits, as the provider account states them (contracts/limits.toml)."""

    requests_per_minute: int | None = Field(
        default=None, gt=0, description="requests the account may send a minute"
    )
    tokens_per_minute: int | None = Field(
        default=None, gt=0, description="prompt and answer tokens a minute, as estimated"
    )
    window_seconds: float = Field(
        default=60,
        gt=0,
        le=60,
        description="the window the limits hold in, scaled to it: shorter for a provider"
        " that enforces a minute's limit over seconds",
    )
    margin_seconds: float = Field(
        default=2.0, ge=0, le=30, description="how much longer than the window a call counts"
    )

    @model_validator(mode="after")
    def _one_fits_a_window(self) -> RateLimit:
        for name in ("requests_per_minute", "tokens_per_minute"):
            per_window = self.per_window(getattr(self, name))
            if per_window is not None and per_window < 1:
                raise ValueError(
                    f"{name} in a {self.window_seconds:g} s window is less than one:"
                    " lengthen window_seconds"
                )
        return self

    def per_window(self, per_minute: int | None) -> int | None:
        """The limit in one window, rounded down (a limit is never rounded over)."""
        return None if per_minute is None else math.floor(per_minute * self.window_seconds / 60)

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=self.window_seconds + self.margin_seconds)


class Entry(BaseModel):
    id: str
    at: datetime
    tokens: int


class Booking(BaseModel):
    """What a call asks for: its id (the activity's), its estimated tokens, and the limit as
    the caller's contracts state it now (an edit reaches the shared ledger with the next call)."""

    id: str
    tokens: int = Field(ge=0)
    limit: RateLimit


class Slot(Admission):
    """When the call may be sent, relative to the ledger's clock (no clock skew between hosts)."""

    wait_seconds: float = 0.0


class Settlement(BaseModel):
    id: str
    tokens: int = Field(default=0, ge=0, description="what the call used")
    sent: bool = Field(default=True, description="False: never sent, its slot is given back")


class BackOff(BaseModel):
    seconds: float = Field(ge=0)


class Ledger(BaseModel):
    """The bookings still counting, oldest first, and the pause a Retry-After set."""

    limit: RateLimit
    entries: list[Entry] = Field(default_factory=list)
    closed_until: datetime | None = None
    booked: int = 0
    waited_seconds: float = 0.0
    back_offs: int = 0

    def _expire(self, now: datetime) -> None:
        span = self.limit.span
        self.entries = [e for e in self.entries if e.at + span > now]

    def _fits(self, at: datetime, tokens: int) -> datetime | None:
        """None when the call fits at `at`; else the earliest time worth trying next."""
        span = self.limit.span
        inside = [e for e in self.entries if e.at + span > at]
        requests = self.limit.per_window(self.limit.requests_per_minute)
        token_cap = self.limit.per_window(self.limit.tokens_per_minute)
        if requests is not None and len(inside) + 1 > requests:
            return inside[len(inside) - requests].at + span
        if token_cap is not None and inside:
            total = sum(e.tokens for e in inside) + min(tokens, token_cap)
            if total > token_cap:
                freed = 0
                for entry in inside:  # drop the oldest until the call fits
                    freed += entry.tokens
                    if total - freed <= token_cap:
                        return entry.at + span
        return None

    def book(self, booking: Booking, now: datetime) -> Slot:
        """The earliest time the call fits, never before a time already given."""
        self.limit = booking.limit
        self._expire(now)
        given = next((e for e in self.entries if e.id == booking.id), None)
        if given is not None:  # asked again (its answer was lost): the same time
            return Slot(granted=True, wait_seconds=max((given.at - now).total_seconds(), 0.0))
        at = max([now, *([self.entries[-1].at] if self.entries else [])])
        if self.closed_until is not None and self.closed_until > at:
            at = self.closed_until
        while (later := self._fits(at, booking.tokens)) is not None:
            at = max(later, at)
        wait = (at - now).total_seconds()
        if at - now > MAX_WAIT:
            return Slot(granted=False, wait_seconds=wait, reason="the queue is longer than 10 min")
        self.entries.append(Entry(id=booking.id, at=at, tokens=booking.tokens))
        self.booked += 1
        self.waited_seconds += wait
        return Slot(granted=True, wait_seconds=wait)

    def settle(self, settlement: Settlement) -> None:
        """The tokens a call used in place of its estimate; a call never sent gives its
        slot back (the times given after it stay: at worst later than they need be)."""
        for entry in self.entries:
            if entry.id == settlement.id:
                entry.tokens = settlement.tokens
                if not settlement.sent:
                    self.entries.remove(entry)
                return

    def back_off(self, seconds: float, now: datetime) -> None:
        until = now + timedelta(seconds=seconds)
        if self.closed_until is None or until > self.closed_until:
            self.closed_until = until
        self.back_offs += 1


class LimiterStart(BaseModel):
    """Input of a limiter's entity workflow; carries the ledger across continue-as-new."""

    label: str
    limit: RateLimit
    ledger: Ledger | None = None
