"""The embedded server command: persisted state survives a restart."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from harness.testing.ports import free_port
from harness.testing.processes import run_script
from harness.testing.stack import ROOT, new_id
from keel.infra.codec import data_converter
from keel.payloads.research import ResearchInput
from workflows.research import ResearchWorkflow


async def test_runs_survive_a_server_restart_and_search_attributes_are_registered(
    tmp_path: Path,
) -> None:
    port, ui_port, tickets_port = free_port(), free_port(), free_port()
    args = ["--data-dir", str(tmp_path), "--port", str(port), "--ui-port", str(ui_port)]
    args += ["--tickets-port", str(tickets_port), "--codec-port", str(free_port())]
    started = await run_script("devserver.py", "start", "--with-tickets", *args)
    assert started.code == 0, started.stdout + started.stderr
    async with httpx.AsyncClient() as http:
        health = await http.get(f"http://127.0.0.1:{tickets_port}/health")
    assert health.json() == {"status": "ok"}
    workflow_id = new_id()
    try:
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        # No worker polls this queue: the run stays open across the restart.
        await client.start_workflow(
            ResearchWorkflow.run,
            ResearchInput(question="Does state survive a restart?"),
            id=workflow_id,
            task_queue="nobody-polls-this",
        )
        again = await run_script("devserver.py", "start", *args)
        assert "already running" in again.stdout
        stopped = await run_script("devserver.py", "stop", *args)
        assert "server: stopped" in stopped.stdout
        assert "tickets: stopped" in stopped.stdout
        assert (tmp_path / "temporal.db").is_file()
        restarted = await run_script("devserver.py", "start", *args)
        assert restarted.code == 0, restarted.stdout + restarted.stderr
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        query = f'WorkflowId = "{workflow_id}" AND ExecutionStatus = "Running"'
        listed = [wf async for wf in client.list_workflows(query)]
        assert [wf.id for wf in listed] == [workflow_id]
        await client.get_workflow_handle(workflow_id).terminate("test done")
    finally:
        await run_script("devserver.py", "stop", *args)


async def test_start_generates_the_ticket_services_token_and_the_service_requires_it(
    tmp_path: Path,
) -> None:
    port, tickets_port = free_port(), free_port()
    args = ["--data-dir", str(tmp_path), "--port", str(port), "--ui-port", str(free_port())]
    args += ["--tickets-port", str(tickets_port), "--codec-port", str(free_port())]
    # No token configured, as on a fresh checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_TICKETS_TOKEN")}

    async def start() -> tuple[int | None, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "devserver.py"), "start", "--with-tickets", *args,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        return process.returncode, out.decode()

    code, out = await start()
    try:
        assert code == 0, out
        token_file = tmp_path / "tickets.token"
        assert f"tickets: generated a bearer token into {token_file}" in out
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in out
        url = f"http://127.0.0.1:{tickets_port}/tickets"
        body = {"title": "Disk full", "description": "devserver token", "severity": "low"}
        async with httpx.AsyncClient() as http:
            refused = await http.post(url, json=body, headers={"Idempotency-Key": "k" * 16})
            created = await http.post(
                url,
                json=body,
                headers={"Idempotency-Key": "k" * 16, "Authorization": f"Bearer {token}"},
            )
        assert refused.status_code == 401
        assert created.status_code == 201
        code, out = await start()  # idempotent: the token is kept
        assert code == 0, out
        assert "generated" not in out
        assert token_file.read_text().strip() == token
    finally:
        await run_script("devserver.py", "stop", *args)


async def test_two_stacks_with_ports_of_their_own_run_side_by_side(tmp_path: Path) -> None:
    stacks: list[tuple[list[str], int, int]] = []
    try:
        for name in ("one", "two"):
            port, metrics = free_port(), free_port()
            args = ["--data-dir", str(tmp_path / name), "--port", str(port)]
            args += ["--ui-port", str(free_port()), "--codec-port", str(free_port())]
            args += ["--tickets-port", str(free_port()), "--metrics-port", str(metrics)]
            stacks.append((args, port, metrics))
            started = await run_script("devserver.py", "start", "--with-worker", *args)
            assert started.code == 0, started.stdout + started.stderr
        for _, port, metrics in stacks:
            address = ["--address", f"127.0.0.1:{port}"]
            ingested = await run_script(
                "client.py", *address, "ingest", str(ROOT / "corpus" / "demo"), "--corpus", "demo"
            )
            assert ingested.code == 0, ingested.stderr
            ran = await run_script(
                "client.py", *address, "research", "What is jitter?",
                "--provider", "scripted", "--model", "narrow_refine_and_revise",
            )  # fmt: skip
            assert ran.code == 0, ran.stderr
            assert "[delivered] node=deliver" in ran.stderr
            async with httpx.AsyncClient() as http:
                served = await http.get(f"http://127.0.0.1:{metrics}/metrics")
            assert served.status_code == 200
            assert "temporal_" in served.text
    finally:
        for args, _, _ in stacks:
            await run_script("devserver.py", "stop", *args)
