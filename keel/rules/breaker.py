"""A circuit breaker's state machine, as pure code (Resilience4j's semantics).

Closed: calls pass; outcomes fill a count-based sliding window. Once the window
holds `min_calls` outcomes and the failure rate reaches the threshold, it opens.
Open: calls are refused without being made, until the cool-down has passed; then
half-open: up to `half_open_probes` calls go through. A probe's success closes the
breaker (with a fresh window); its failure opens it again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

BreakerStateName = Literal["closed", "open", "half_open"]

# The entity workflow's stable names, shared by the workflow that defines them and
# the activities that call it, so neither layer imports the other. Renaming any of
# them breaks running breakers.
BREAKER_WORKFLOW = "CircuitBreakerWorkflow"
ACQUIRE_UPDATE = "acquire"
RECORD_UPDATE = "record"
STATE_QUERY = "state"


def breaker_id(scope: str, name: str) -> str:
    """One breaker per scope (the task queue) and model or tool."""
    return f"breaker-{scope}-{name}"


class BreakerConfig(BaseModel):
    window: int = Field(default=20, ge=1, description="last N outcomes considered")
    min_calls: int = Field(default=5, ge=1, description="outcomes needed before opening")
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    cooldown_seconds: float = Field(default=30, ge=0)
    half_open_probes: int = Field(default=1, ge=1)


class Transition(BaseModel):
    at: datetime
    from_state: BreakerStateName
    to_state: BreakerStateName
    reason: str


class Permission(BaseModel):
    allowed: bool
    state: BreakerStateName
    reason: str = ""


class BreakerState(BaseModel):
    name: str
    config: BreakerConfig = Field(default_factory=BreakerConfig)
    state: BreakerStateName = "closed"
    outcomes: list[bool] = Field(default_factory=list, description="True for a failure")
    opened_at: datetime | None = None
    probes_in_flight: int = 0
    probe_started_at: datetime | None = None
    rejected: int = 0
    transitions: list[Transition] = Field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def _move(self, to: BreakerStateName, now: datetime, reason: str) -> None:
        self.transitions = [
            *self.transitions[-19:],
            Transition(at=now, from_state=self.state, to_state=to, reason=reason),
        ]
        self.state = to
        self.probes_in_flight = 0
        if to == "open":
            self.opened_at = now
        if to == "closed":
            self.outcomes = []
            self.opened_at = None

    def acquire(self, now: datetime) -> Permission:
        if self.state == "open":
            assert self.opened_at is not None
            if now - self.opened_at < timedelta(seconds=self.config.cooldown_seconds):
                self.rejected += 1
                return Permission(allowed=False, state="open", reason="open, cooling down")
            self._move("half_open", now, "cool-down over")
        if self.state == "half_open":
            stale = self.probe_started_at is not None and now - self.probe_started_at > (
                timedelta(seconds=self.config.cooldown_seconds)
            )
            if self.probes_in_flight >= self.config.half_open_probes and not stale:
                self.rejected += 1
                return Permission(allowed=False, state="half_open", reason="probe in flight")
            if stale:  # its caller died without an answer; let another probe go
                self.probes_in_flight = 0
            self.probes_in_flight += 1
            self.probe_started_at = now
        return Permission(allowed=True, state=self.state)

    def record(self, failed: bool, now: datetime) -> None:
        if self.state == "half_open":
            if failed:
                self._move("open", now, "probe failed")
            else:
                self._move("closed", now, "probe succeeded")
            return
        if self.state == "open":
            return  # a late answer from before it opened
        self.outcomes = [*self.outcomes, failed][-self.config.window :]
        if len(self.outcomes) >= self.config.min_calls and self.failure_rate >= (
            self.config.failure_rate
        ):
            self._move(
                "open", now, f"failure rate {self.failure_rate:.0%} over {len(self.outcomes)}"
            )


class BreakerStart(BaseModel):
    """Input of a breaker's entity workflow; carries the state across continue-as-new."""

    name: str
    config: BreakerConfig = Field(default_factory=BreakerConfig)
    state: BreakerState | None = None


class CallOutcome(BaseModel):
    failed: bool
    count: int = Field(
        default=1, ge=1, le=10_000, description="that many calls, told together (successes)"
    )
