"""The breaker's state machine on its own: closed -> open -> half-open -> closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keel.rules.breaker import BreakerConfig, BreakerState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = BreakerConfig(window=4, min_calls=4, failure_rate=0.5, cooldown_seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state_of(breaker: BreakerState) -> str:
    """Read afresh: the state changes under calls a type checker cannot follow."""
    return breaker.state


def test_opens_at_the_failure_rate_over_the_window_and_refuses_calls() -> None:
    breaker = BreakerState(name="m", config=CONFIG)
    for failed in (False, True, False):
        assert breaker.acquire(at(0)).allowed
        breaker.record(failed, at(0))
    assert state_of(breaker) == "closed"  # 3 outcomes: fewer than min_calls
    breaker.record(True, at(1))
    assert state_of(breaker) == "open"  # 2 of 4 failed
    refused = breaker.acquire(at(10))
    assert (refused.allowed, refused.state, breaker.rejected) == (False, "open", 1)


def test_a_healthy_window_stays_closed() -> None:
    breaker = BreakerState(name="m", config=CONFIG)
    for failed in (True, False, False, False, True, False, False, False):
        breaker.record(failed, at(0))
    assert state_of(breaker) == "closed"
    assert breaker.outcomes == [True, False, False, False]


def test_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    breaker = BreakerState(name="m", config=CONFIG)
    for _ in range(4):
        breaker.record(True, at(0))
    assert not breaker.acquire(at(29)).allowed
    probe = breaker.acquire(at(31))
    assert (probe.allowed, probe.state) == (True, "half_open")
    assert not breaker.acquire(at(31)).allowed  # one probe at a time
    breaker.record(False, at(32))
    assert state_of(breaker) == "closed"
    assert breaker.outcomes == []
    assert [t.to_state for t in breaker.transitions] == ["open", "half_open", "closed"]


def test_a_failed_probe_opens_it_again_for_another_cool_down() -> None:
    breaker = BreakerState(name="m", config=CONFIG)
    for _ in range(4):
        breaker.record(True, at(0))
    assert breaker.acquire(at(31)).allowed
    breaker.record(True, at(32))
    assert state_of(breaker) == "open"
    assert not breaker.acquire(at(50)).allowed  # the cool-down starts again at 32
    assert breaker.acquire(at(63)).allowed


def test_a_probe_that_never_answers_does_not_hold_the_breaker_half_open() -> None:
    breaker = BreakerState(name="m", config=CONFIG)
    for _ in range(4):
        breaker.record(True, at(0))
    assert breaker.acquire(at(31)).allowed  # its caller dies: no record() follows
    assert not breaker.acquire(at(40)).allowed
    assert breaker.acquire(at(62)).allowed  # one cool-down later, a new probe
