"""Retry-After is read one way for the model providers and the ticket service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.retry_after import retry_after
from activities.tickets.http_errors import raise_for_status

NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def answer(status: int, headers: dict[str, str]) -> httpx.Response:
    request = httpx.Request("POST", "http://tickets.test/tickets")
    return httpx.Response(status, headers=headers, json={"detail": "busy"}, request=request)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", timedelta(seconds=7)),
        ("1.5", timedelta(seconds=1.5)),
        (" 0 ", timedelta(0)),
        ("Mon, 05 Jan 2026 12:00:30 GMT", timedelta(seconds=30)),
        ("Mon, 05 Jan 2026 11:59:00 GMT", timedelta(0)),  # a date passed: retry now
        ("-3", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("", None),
    ],
)
def test_seconds_and_http_dates_are_read_and_nonsense_is_not(
    value: str, expected: timedelta | None
) -> None:
    assert retry_after(answer(503, {"Retry-After": value}), now=NOW) == expected


def test_no_header_means_the_retry_policy_decides() -> None:
    assert retry_after(answer(503, {})) is None


def test_the_ticket_service_retry_honours_the_header() -> None:
    with pytest.raises(ApplicationError) as raised:
        raise_for_status(answer(429, {"Retry-After": "4"}))
    assert raised.value.type == "TicketServiceUnavailable"
    assert raised.value.next_retry_delay == timedelta(seconds=4)
