"""The rate-limit ledger and the tenant's day, as pure code; their contracts' bad input."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.contracts.loader import CONTRACTS_DIR, ContractError, load_all
from harness.testing.processes import run_script
from keel.rules.rate_limit import Booking, Ledger, RateLimit, Settlement
from keel.rules.tenants import Charge, Reservation, Spend, TenantBudget, TenantDay

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEN_A_SECOND = RateLimit(requests_per_minute=600, window_seconds=1, margin_seconds=0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def book(ledger: Ledger, n: int, now: float = 0.0, tokens: int = 0) -> list[float]:
    """The wait of each of `n` calls booked at `now`."""
    limit = ledger.limit
    return [
        ledger.book(Booking(id=f"c{now}-{i}", tokens=tokens, limit=limit), at(now)).wait_seconds
        for i in range(n)
    ]


def test_calls_over_the_limit_are_given_later_times_first_come_first_served() -> None:
    ledger = Ledger(limit=TEN_A_SECOND)
    waits = book(ledger, 25)
    assert waits == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
    # Any window of one second holds at most ten calls, as the provider counts them.
    times = sorted(e.at for e in ledger.entries)
    assert all(times[i + 10] - times[i] >= timedelta(seconds=1) for i in range(len(times) - 10))


def test_the_margin_keeps_each_call_counted_longer_than_the_window() -> None:
    ledger = Ledger(limit=RateLimit(requests_per_minute=60, window_seconds=2, margin_seconds=0.5))
    assert book(ledger, 3) == [0.0, 0.0, 2.5]


def test_tokens_a_minute_hold_calls_back_until_enough_tokens_are_freed() -> None:
    limit = RateLimit(tokens_per_minute=1000)
    ledger = Ledger(limit=limit)
    assert book(ledger, 2, tokens=400) == [0.0, 0.0]
    assert book(ledger, 1, now=1, tokens=400) == [61.0]  # the first call's tokens go at 62 s


def test_a_settled_call_frees_the_tokens_it_did_not_use() -> None:
    limit = RateLimit(tokens_per_minute=1000)
    ledger = Ledger(limit=limit)
    book(ledger, 2, tokens=400)
    ledger.settle(Settlement(id="c0.0-0", tokens=50))
    assert book(ledger, 1, now=1, tokens=400) == [0.0]


def test_a_call_never_sent_gives_its_slot_back() -> None:
    ledger = Ledger(limit=TEN_A_SECOND)
    book(ledger, 10)
    ledger.settle(Settlement(id="c0.0-3", sent=False))
    assert book(ledger, 1, now=0.5) == [0.0]


def test_a_retry_after_closes_the_ledger_for_every_caller() -> None:
    ledger = Ledger(limit=TEN_A_SECOND)
    ledger.back_off(3.0, at(0))
    assert book(ledger, 2, now=1) == [2.0, 2.0]


def test_a_booking_asked_again_gets_the_same_time() -> None:
    ledger = Ledger(limit=TEN_A_SECOND)
    book(ledger, 12)
    again = ledger.book(Booking(id="c0.0-11", tokens=0, limit=TEN_A_SECOND), at(0.25))
    assert again.wait_seconds == 0.75
    assert len(ledger.entries) == 12


def test_a_queue_longer_than_ten_minutes_is_refused_not_booked() -> None:
    ledger = Ledger(limit=RateLimit(requests_per_minute=1, margin_seconds=0))
    waits = book(ledger, 12)
    assert len(ledger.entries) == 11  # at 0, 60, ... 600 s
    assert waits[-1] == 660


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"requests_per_minute": 0}, "greater than 0"),
        ({"tokens_per_minute": -5}, "greater than 0"),
        ({"requests_per_minute": 3, "window_seconds": 10}, "less than one"),
    ],
)
def test_a_limit_of_zero_or_below_is_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RateLimit.model_validate(fields)


def reservation(r_id: str, budget: TenantBudget, prompt: int = 100, out: int = 400) -> Reservation:
    return Reservation(
        id=r_id,
        budget=budget,
        prompt_tokens=prompt,
        max_output_tokens=out,
        min_output_tokens=16,
        usd_per_input_token=1e-6,
        usd_per_output_token=1e-5,
    )


def day(budget: TenantBudget) -> TenantDay:
    return TenantDay(spend=Spend(tenant="acme", day=date(2026, 1, 1), budget=budget))


def test_a_call_gets_only_the_answer_tokens_the_tenant_can_still_pay_for() -> None:
    budget = TenantBudget(usd_per_day=0.003)
    tenant = day(budget)
    first = tenant.reserve(reservation("a", budget))
    assert (first.granted, first.output_tokens) == (True, 290)  # (0.003 - 100e-6) / 1e-5
    second = tenant.reserve(reservation("b", budget))
    assert not second.granted
    assert "acme" in second.reason
    assert "$0.0030 of $0.003" in second.reason


def test_a_charge_replaces_the_hold_once() -> None:
    budget = TenantBudget(tokens_per_day=1000)
    tenant = day(budget)
    tenant.reserve(reservation("a", budget))
    assert tenant.spend.left_tokens == 500
    tenant.charge(Charge(id="a", tokens=150, cost_usd=0.001))
    tenant.charge(Charge(id="a", tokens=150, cost_usd=0.001))
    assert (tenant.spend.spent_tokens, tenant.spend.left_tokens, tenant.spend.calls) == (
        150,
        850,
        1,
    )


def test_calls_in_flight_together_never_reserve_past_the_budget() -> None:
    budget = TenantBudget(tokens_per_day=2000)
    tenant = day(budget)
    grants = [tenant.reserve(reservation(str(i), budget)) for i in range(6)]
    held = sum(100 + g.output_tokens for g in grants if g.granted)
    assert held <= 2000
    assert [g.granted for g in grants] == [True, True, True, True, False, False]


def contracts(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("limits.toml", '[limits."openai/gpt-5"]\nrequests_per_minute = 0\n', "greater than 0"),
        ("limits.toml", "[limits.gpt-5]\nrequests_per_minute = 10\n", "provider/model"),
        ("tenants.toml", "[tenants.acme]\nusd_per_day = -1\n", "greater than 0"),
        ("tenants.toml", '[tenants."a b"]\n', "not a tenant name"),
    ],
)
def test_bad_limits_and_tenants_fail_with_the_file_and_table(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ContractError, match=message) as raised:
        load_all(contracts(tmp_path, name, text))
    assert name in str(raised.value)
    assert "\n" not in str(raised.value)


def test_contracts_without_limits_or_tenants_still_load(tmp_path: Path) -> None:
    folder = contracts(tmp_path, "limits.toml", "")
    (folder / "limits.toml").unlink()
    (folder / "tenants.toml").unlink()
    loaded = load_all(folder)
    assert (loaded.limits, loaded.tenants) == ({}, {})


async def test_contracts_check_refuses_a_zero_limit_in_one_line(tmp_path: Path) -> None:
    folder = contracts(tmp_path, "limits.toml", '[limits."openai/gpt-5"]\ntokens_per_minute = 0\n')
    result = await run_script("client.py", "contracts", "check", "--dir", str(folder))
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "limits.toml" in result.stderr
    assert "tokens_per_minute" in result.stderr
