"""What a newcomer trips over first: links, the data folder, `list`, decisions, queued runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.ports import free_port
from harness.testing.processes import run_script
from harness.testing.saga import incident, progress_when, saga_workers, start
from harness.testing.stack import DEMO_CORPUS, new_id, running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.payloads.coordinator import CoordinatorInput
from keel.payloads.research import ResearchInput
from keel.payloads.routing import AskInput
from keel.payloads.tickets import TicketSagaInput
from workflows.coordinator import CoordinatorWorkflow
from workflows.intent_router import IntentRouterWorkflow
from workflows.research import ResearchWorkflow
from workflows.ticket_saga import TicketSagaWorkflow


async def test_address_works_after_the_subcommand_too() -> None:
    result = await run_script("client.py", "list", "--address", "127.0.0.1:1")
    assert result.code == 3, result.stderr
    assert "127.0.0.1:1" in result.stderr


async def test_list_shows_every_kind_of_flow_under_a_header(
    client: Client, server_address: str
) -> None:
    queue = new_id("nobody")  # no worker: every run stays open, as started
    ids = {name: new_id(name) for name in ("research", "team", "saga", "router")}
    await client.start_workflow(
        ResearchWorkflow.run,
        ResearchInput(question="Listed?"),
        id=ids["research"],
        task_queue=queue,
    )
    await client.start_workflow(
        CoordinatorWorkflow.run, CoordinatorInput(request="A report"), id=ids["team"],
        task_queue=queue,
    )  # fmt: skip
    await client.start_workflow(
        TicketSagaWorkflow.run, TicketSagaInput(description="An incident"), id=ids["saga"],
        task_queue=queue,
    )  # fmt: skip
    await client.start_workflow(
        IntentRouterWorkflow.run, AskInput(request="A request"), id=ids["router"], task_queue=queue
    )
    try:
        listed = await run_script(
            "client.py", "--address", server_address, "list", "--limit", "200"
        )
        saga_only = await run_script(
            "client.py", "list", "--type", "saga", "--limit", "200", "--address", server_address
        )
    finally:
        for workflow_id in ids.values():
            await client.get_workflow_handle(workflow_id).terminate("test done")
    assert listed.code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    # A SCHEDULE column joins before STARTED when a listed run was started by a schedule.
    header = [word for word in lines[0].split() if word != "SCHEDULE"]
    assert header == ["WORKFLOW", "ID", "TYPE", "STATUS", "STATE", "NODE", "STARTED"]
    types = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert types[ids["research"]] == "ResearchWorkflow"
    assert types[ids["team"]] == "CoordinatorWorkflow"
    assert types[ids["saga"]] == "TicketSagaWorkflow"
    assert types[ids["router"]] == "IntentRouterWorkflow"
    saga_ids = [line.split()[0] for line in saga_only.stdout.splitlines()[1:]]
    assert ids["saga"] in saga_ids
    assert ids["research"] not in saga_ids


async def test_a_run_waiting_for_the_model_slot_shows_as_queued(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    # Orchestration only: the run's model call is scheduled, and no model takes it.
    settings = worker_settings(worker_role="orchestration")
    workflow_id = new_id()
    async with running_workers(client, store, settings):
        handle = await client.start_workflow(
            ResearchWorkflow.run,
            ResearchInput(question="Queued?", llm_task_queue=settings.llm_task_queue),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        for _ in range(100):
            pending = (await handle.describe()).raw_description.pending_activities
            if pending:
                break
            await asyncio.sleep(0.1)
        base = ["--address", server_address]
        listed = await run_script("client.py", *base, "list", "--json", "--limit", "200")
        status = await run_script("client.py", *base, "status", workflow_id)
        await handle.terminate("test done")
    rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
    assert rows[workflow_id]["research_status"] == "queued"
    assert rows[workflow_id]["node"] == "plan"
    assert json.loads(status.stdout)["queued"] is True
    assert "queued: its model call waits for a free model slot" in status.stderr


async def test_approve_prints_the_state_after_the_decision_took_effect(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    async with saga_workers(client, store, tickets) as settings:
        handle = await start(client, settings, incident(settings))
        await progress_when(handle, "awaiting_approval")
        approved = await run_script("client.py", "--address", server_address, "approve", handle.id)
        await handle.result()
    assert approved.code == 0, approved.stderr
    progress = json.loads(approved.stdout)
    assert progress["decision"]["decision"] == "approve"
    assert progress["status"] in ("notifying", "done")


async def test_the_web_ui_link_follows_the_servers_port(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    host, _, port = server_address.rpartition(":")
    async with running_workers(client, store) as settings:
        result = await run_script(
            "client.py", "--address", server_address, "start", "Which port has the UI?",
            env={"KEEL_TASK_QUEUE": settings.task_queue},
        )  # fmt: skip
        chosen = await run_script(
            "client.py", "--address", server_address, "start", "And when it is set?",
            env={"KEEL_TASK_QUEUE": settings.task_queue, "KEEL_UI_URL": "https://ui.example"},
        )  # fmt: skip
        for started in (result, chosen):
            await client.get_workflow_handle(json.loads(started.stdout)["workflow_id"]).terminate()
    assert f"Web UI: http://{host}:{int(port) + 1000}/namespaces/default/workflows/" in (
        result.stderr
    )
    assert "Web UI: https://ui.example/namespaces/default/workflows/" in chosen.stderr


async def test_devserver_gives_its_worker_the_data_folder_and_the_tickets_port(
    tmp_path: Path,
) -> None:
    port, tickets_port = free_port(), free_port()
    args = ["--data-dir", str(tmp_path), "--port", str(port)]
    args += ["--tickets-port", str(tickets_port), "--codec-port", str(free_port())]
    # The worker's metrics on a free port: another stack on this machine may hold 9464.
    metrics = {"KEEL_METRICS_PORT": str(free_port())}
    started = await run_script(
        "devserver.py", "start", "--with-worker", "--with-tickets", *args, env=metrics
    )
    try:
        assert started.code == 0, started.stdout + started.stderr
        assert f"Web UI: http://127.0.0.1:{port + 1000}" in started.stdout
        worker_pid = (tmp_path / "worker.pid").read_text().strip()
        command = Path(f"/proc/{worker_pid}/cmdline").read_bytes().split(b"\0")
        assert f"http://127.0.0.1:{tickets_port}".encode() in command
        ingested = await run_script(
            "client.py", "--address", f"127.0.0.1:{port}",
            "ingest", str(DEMO_CORPUS), "--corpus", "demo",
        )  # fmt: skip
        assert ingested.code == 0, ingested.stderr
        assert DocumentStore(tmp_path / "documents.db").document_ids("demo")
    finally:
        await run_script("devserver.py", "stop", *args)
