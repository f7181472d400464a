"""Real processes killed and restarted in the middle of a saga.

The worker is killed with SIGKILL after the ticket service committed a ticket but
before the activity could report it; the Temporal server is restarted, its SQLite
file kept, while a step is in flight. Each test then counts records in the
service's database: one of each, none left behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.ports import free_port
from harness.testing.processes import run_script, worker_process
from harness.testing.saga import (
    SUBTASKS,
    completed_results,
    decide,
    incident,
    progress_when,
    start,
    until,
)
from harness.testing.stack import running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.infra.codec import data_converter


async def test_worker_killed_after_the_ticket_landed_leaves_exactly_one_ticket(
    client: Client, tickets: TicketService, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings(tickets_url=tickets.url)
    # The service commits the ticket, then holds its answer: the worker dies waiting.
    tickets.fault("create_ticket", after_commit_ms=30_000)
    request = incident(settings, step_timeout_seconds=3)
    async with worker_process(server_address, settings, tmp_path) as first:
        handle = await start(client, settings, request)
        await until(lambda: tickets.audit(request.description).tickets == 1)
        first.kill()  # SIGKILL: no chance to report anything
        await first.wait()
    async with worker_process(server_address, settings, tmp_path):
        await progress_when(handle, "awaiting_approval")
        await decide(handle, "approve")
        result = await handle.result()
    assert result.outcome == "completed"
    created = await completed_results(client, handle.id, "create_ticket")
    assert [(c["attempt"] >= 2, c["replayed"]) for c in created] == [(True, True)]
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_subtasks, audit.active_assignments) == (1, SUBTASKS, 1)
    assert (audit.notices, audit.duplicates, audit.orphans) == (1, 0, 0)


async def test_server_restarted_mid_saga_finishes_it_once(
    store: DocumentStore, tickets: TicketService, tmp_path: Path
) -> None:
    port, ui_port = free_port(), free_port()
    server = [
        "--data-dir",
        str(tmp_path / "server"),
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--codec-port",
        str(free_port()),
    ]
    assert (await run_script("devserver.py", "start", *server)).code == 0
    try:
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        settings = worker_settings(tickets_url=tickets.url)
        # The second subtask call is in flight when the server goes away.
        tickets.fault("create_subtask", hold_ms=3000)
        request = incident(settings, step_timeout_seconds=5)
        async with running_workers(client, store, settings):
            handle = await start(client, settings, request)
            await until(lambda: tickets.audit(request.description).tickets == 1)
            stopped = await run_script("devserver.py", "stop", *server)
            assert "server: stopped" in stopped.stdout
            await asyncio.sleep(2)
            restarted = await run_script("devserver.py", "start", *server)
            assert restarted.code == 0, restarted.stdout + restarted.stderr
            await progress_when(handle, "awaiting_approval", seconds=90)
            await decide(handle, "approve")
            result = await handle.result()
    finally:
        await run_script("devserver.py", "stop", *server)
    assert result.outcome == "completed"
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_subtasks, audit.active_assignments) == (1, SUBTASKS, 1)
    assert (audit.notices, audit.duplicates, audit.orphans) == (1, 0, 0)
