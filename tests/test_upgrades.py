"""A rolling upgrade with Worker Deployment Versioning, on the dev server.

Runs started on build v1 finish on v1 while new runs start on v2, with both builds'
workers polling the same task queues; the current version is moved the way
docs/upgrades.md says, with the `temporal` CLI.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.client import Client, WorkflowHandle

from activities.documents.store import DocumentStore
from harness.testing.saga import incident, progress_when
from harness.testing.stack import new_id, running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.infra.binaries import temporal_cli
from keel.payloads.tickets import ApprovalDecision, TicketSagaResult
from workflows.ticket_saga import TicketSagaWorkflow

Saga = WorkflowHandle[TicketSagaWorkflow, TicketSagaResult]


async def set_current_version(address: str, deployment: str, build_id: str) -> None:
    """`temporal worker deployment set-current-version`, once the build's workers poll."""
    command = [
        str(temporal_cli()), "worker", "deployment", "set-current-version",
        "--address", address, "--deployment-name", deployment, "--build-id", build_id, "--yes",
    ]  # fmt: skip
    error = b""
    for _ in range(100):
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, error = await process.communicate()
        if process.returncode == 0:
            return
        await asyncio.sleep(0.2)  # the version registers with its workers' first polls
    raise AssertionError(f"set-current-version {build_id}: {error.decode()}")


async def builds_of(client: Client, handle: Saga) -> set[str]:
    """The build ids that completed the run's workflow tasks."""
    history = await client.get_workflow_handle(handle.id).fetch_history()
    return {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }


async def test_runs_started_on_v1_finish_on_v1_while_new_runs_start_on_v2(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    deployment = f"keel-test-{uuid.uuid4().hex[:8]}"
    v1 = worker_settings(tickets_url=tickets.url, deployment_name=deployment, build_id="v1")
    v2 = v1.model_copy(update={"build_id": "v2"})
    approve = ApprovalDecision.model_validate({"decision": "approve"})

    async with running_workers(client, store, v1):
        await set_current_version(server_address, deployment, "v1")
        old: Saga = await client.start_workflow(
            TicketSagaWorkflow.run, incident(v1), id=new_id("incident"), task_queue=v1.task_queue
        )
        await progress_when(old, "awaiting_approval")

        async with running_workers(client, store, v2):
            await set_current_version(server_address, deployment, "v2")
            new: Saga = await client.start_workflow(
                TicketSagaWorkflow.run,
                incident(v2),
                id=new_id("incident"),
                task_queue=v2.task_queue,
            )
            await progress_when(new, "awaiting_approval")
            # The old run resumes after the upgrade: pinned, it stays on v1.
            await old.execute_update(TicketSagaWorkflow.decide, approve)
            await new.execute_update(TicketSagaWorkflow.decide, approve)
            assert (await old.result()).outcome == "completed"
            assert (await new.result()).outcome == "completed"

    assert await builds_of(client, old) == {"v1"}
    assert await builds_of(client, new) == {"v2"}
    versioning = (await old.describe()).raw_description.workflow_execution_info.versioning_info
    assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
