"""The ticket service honours Idempotency-Key like a payment API."""

from __future__ import annotations

import uuid

import httpx

from tests.ticket_service_process import TicketService


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def new_ticket(description: str) -> dict[str, str]:
    return {"title": "Disk full on db-1", "description": description, "severity": "high"}


def test_a_repeated_key_returns_the_first_result_and_creates_nothing(
    tickets: TicketService,
) -> None:
    description = f"disk full {uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key()}
    first = httpx.post(f"{tickets.url}/tickets", json=new_ticket(description), headers=headers)
    second = httpx.post(f"{tickets.url}/tickets", json=new_ticket(description), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert tickets.audit(description).tickets == 1


def test_a_key_reused_for_another_request_is_refused(tickets: TicketService) -> None:
    headers = {"Idempotency-Key": key()}
    httpx.post(f"{tickets.url}/tickets", json=new_ticket("first body"), headers=headers)
    reused = httpx.post(f"{tickets.url}/tickets", json=new_ticket("other body"), headers=headers)
    assert reused.status_code == 422
    assert "different request" in reused.json()["detail"]
    assert tickets.audit("other body").tickets == 0


def test_writes_without_a_key_or_with_bad_input_are_refused(tickets: TicketService) -> None:
    no_key = httpx.post(f"{tickets.url}/tickets", json=new_ticket("no key"))
    assert no_key.status_code == 422
    bad = httpx.post(
        f"{tickets.url}/tickets",
        json={"title": "", "description": "x", "severity": "apocalyptic"},
        headers={"Idempotency-Key": key()},
    )
    assert bad.status_code == 422
    unknown = httpx.post(
        f"{tickets.url}/tickets/999999/assignments",
        json={"assignee": "oncall"},
        headers={"Idempotency-Key": key()},
    )
    assert unknown.status_code == 404


def test_compensations_undo_and_are_idempotent_too(tickets: TicketService) -> None:
    description = f"undo {uuid.uuid4().hex}"
    ticket = httpx.post(
        f"{tickets.url}/tickets", json=new_ticket(description), headers={"Idempotency-Key": key()}
    ).json()
    subtask = httpx.post(
        f"{tickets.url}/tickets/{ticket['id']}/subtasks",
        json={"title": "free space"},
        headers={"Idempotency-Key": key()},
    ).json()
    undo = {"Idempotency-Key": key()}
    for _ in range(2):
        deleted = httpx.post(f"{tickets.url}/subtasks/{subtask['id']}/delete", headers=undo)
        assert deleted.json() == {"id": subtask["id"], "status": "deleted"}
    cancel = {"Idempotency-Key": key()}
    for _ in range(2):
        cancelled = httpx.post(f"{tickets.url}/tickets/{ticket['id']}/cancel", headers=cancel)
        assert cancelled.json()["status"] == "cancelled"
    audit = tickets.audit(description)
    assert (audit.tickets, audit.open_tickets, audit.deleted_subtasks) == (1, 0, 1)
    assert audit.orphans == 0
    late = httpx.post(
        f"{tickets.url}/tickets/{ticket['id']}/subtasks",
        json={"title": "too late"},
        headers={"Idempotency-Key": key()},
    )
    assert late.status_code == 409
