"""The embedded server command: persisted state survives a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from infra.codec import data_converter
from models.research import ResearchInput
from tests.conftest import new_id
from tests.ports import free_port
from tests.processes import run_script
from workflows.research import ResearchWorkflow
from workflows.search_attributes import RESEARCH_STATUS


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
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(RESEARCH_STATUS, "queued")]
            ),
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
        listed = [wf async for wf in client.list_workflows(f'{RESEARCH_STATUS.name} = "queued"')]
        assert [wf.id for wf in listed] == [workflow_id]
        await client.get_workflow_handle(workflow_id).terminate("test done")
    finally:
        await run_script("devserver.py", "stop", *args)
