"""The ticket service honours Idempotency-Key like a payment API, for its token's bearer only."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tickets.activities import TicketActivities
from harness.testing.ticket_service import ROOT, TicketService
from keel.payloads.tickets import CreateTicket


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def write(tickets: TicketService, path: str, body: dict[str, str]) -> httpx.Response:
    """A write under a key of its own."""
    return tickets.post(f"{tickets.url}{path}", json=body, headers={"Idempotency-Key": key()})


def new_ticket(description: str) -> dict[str, str]:
    return {"title": "Disk full on db-1", "description": description, "severity": "high"}


def test_a_repeated_key_returns_the_first_result_and_creates_nothing(
    tickets: TicketService,
) -> None:
    description = f"disk full {uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key()}
    first = tickets.post(f"{tickets.url}/tickets", json=new_ticket(description), headers=headers)
    second = tickets.post(f"{tickets.url}/tickets", json=new_ticket(description), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert tickets.audit(description).tickets == 1


def test_a_key_reused_for_another_request_is_refused(tickets: TicketService) -> None:
    headers = {"Idempotency-Key": key()}
    tickets.post(f"{tickets.url}/tickets", json=new_ticket("first body"), headers=headers)
    reused = tickets.post(f"{tickets.url}/tickets", json=new_ticket("other body"), headers=headers)
    assert reused.status_code == 422
    assert "different request" in reused.json()["detail"]
    assert tickets.audit("other body").tickets == 0


def test_writes_without_a_key_or_with_bad_input_are_refused(tickets: TicketService) -> None:
    no_key = tickets.post(f"{tickets.url}/tickets", json=new_ticket("no key"))
    assert no_key.status_code == 422
    bad = write(tickets, "/tickets", {"title": "", "description": "x", "severity": "apocalyptic"})
    assert bad.status_code == 422
    unknown = write(tickets, "/tickets/999999/assignments", {"assignee": "oncall"})
    assert unknown.status_code == 404


def test_compensations_undo_and_are_idempotent_too(tickets: TicketService) -> None:
    description = f"undo {uuid.uuid4().hex}"
    ticket = write(tickets, "/tickets", new_ticket(description)).json()
    subtask = write(tickets, f"/tickets/{ticket['id']}/subtasks", {"title": "free space"}).json()
    undo = {"Idempotency-Key": key()}
    for _ in range(2):
        deleted = tickets.post(f"{tickets.url}/subtasks/{subtask['id']}/delete", headers=undo)
        assert deleted.json() == {"id": subtask["id"], "status": "deleted"}
    cancel = {"Idempotency-Key": key()}
    for _ in range(2):
        cancelled = tickets.post(f"{tickets.url}/tickets/{ticket['id']}/cancel", headers=cancel)
        assert cancelled.json()["status"] == "cancelled"
    audit = tickets.audit(description)
    assert (audit.tickets, audit.open_tickets, audit.deleted_subtasks) == (1, 0, 1)
    assert audit.orphans == 0
    late = write(tickets, f"/tickets/{ticket['id']}/subtasks", {"title": "too late"})
    assert late.status_code == 409


def test_calls_without_the_token_or_with_another_get_401_and_change_nothing(
    tickets: TicketService,
) -> None:
    description = f"unauthenticated {uuid.uuid4().hex}"
    for auth in ({}, {"Authorization": "Bearer not-the-service-token-000"}, {"Authorization": ""}):
        headers = {"Idempotency-Key": key(), **auth}
        created = httpx.post(
            f"{tickets.url}/tickets", json=new_ticket(description), headers=headers
        )
        assert created.status_code == 401
        assert created.headers["WWW-Authenticate"] == "Bearer"
        assert tickets.token not in created.text
        # The key was never recorded: the same key with the token creates the ticket.
        accepted = tickets.post(
            f"{tickets.url}/tickets", json=new_ticket(description), headers=headers | tickets.auth
        )
        assert accepted.status_code == 201
        assert accepted.headers["Idempotent-Replayed"] == "false"
        ticket_id = accepted.json()["id"]
        for call in (
            httpx.get(f"{tickets.url}/tickets/{ticket_id}", headers=auth),
            httpx.post(f"{tickets.url}/tickets/{ticket_id}/cancel", headers=headers),
            httpx.post(f"{tickets.url}/_faults", json={"route": "notify"}, headers=auth),
            httpx.get(f"{tickets.url}/docs", headers=auth),
        ):
            assert call.status_code == 401, call.request.url
        # Only the authenticated calls changed anything: the ticket is open, not cancelled.
        assert tickets.query("SELECT status FROM tickets WHERE id = ?", ticket_id) == [("open",)]
    assert httpx.get(f"{tickets.url}/health").status_code == 200


async def test_the_worker_sends_the_token_and_a_wrong_one_is_a_typed_non_retryable_error(
    tickets: TicketService,
) -> None:
    call = CreateTicket(
        idempotency_key=key(), title="Disk full", description=f"typed {uuid.uuid4().hex}",
        severity="high",
    )  # fmt: skip
    created = await ActivityEnvironment().run(
        TicketActivities(tickets.url, tickets.token).create_ticket, call
    )
    assert created.status == "open"
    for token in (None, "a-token-the-service-never-issued"):
        refused = call.model_copy(update={"idempotency_key": key(), "description": "refused"})
        with pytest.raises(ApplicationError) as error:
            await ActivityEnvironment().run(
                TicketActivities(tickets.url, token).create_ticket, refused
            )
        assert error.value.type == "TicketServiceAuth"
        assert error.value.non_retryable
        assert "KEEL_TICKETS_TOKEN" in error.value.message
        assert str(token) not in error.value.message
    assert tickets.audit("refused").tickets == 0


@pytest.mark.parametrize("token", [None, "short"])
def test_the_service_refuses_to_start_without_a_usable_token(
    tmp_path: Path, token: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_TICKETS_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    if token is not None:
        env["KEEL_TICKETS_TOKEN"] = token
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "keel.services.ticket_service",
            "--port",
            "0",
            "--db",
            str(tmp_path / "t.db"),
        ],
        cwd=tmp_path,  # no .data/tickets.token here
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1, started.stderr
    assert "KEEL_TICKETS_TOKEN" in lines[0]
    assert not (tmp_path / "t.db").exists()
