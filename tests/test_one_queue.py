"""One task queue for workflows and model calls: the orchestration worker runs the calls."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.stack import QUESTION, execute_scripted, running_workers, worker_settings
from worker import parse_args

MODEL_CALL = "complete_llm"


async def test_one_queue_runs_the_research_flow_with_its_model_calls_on_that_queue(
    client: Client, store: DocumentStore
) -> None:
    settings = worker_settings()
    settings = settings.model_copy(update={"llm_task_queue": settings.task_queue})
    async with running_workers(client, store, settings):
        workflow_id, report = await execute_scripted(
            client, settings, "refine_and_revise", QUESTION
        )
    assert report.review_passed
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    calls = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == MODEL_CALL
    ]
    assert calls
    assert {c.task_queue.name for c in calls} == {settings.task_queue}
    # Heartbeats stay on: the calls still carry their heartbeat timeout.
    assert all(c.heartbeat_timeout.ToSeconds() > 0 for c in calls)


@pytest.mark.parametrize("role", ["orchestration", "llm"])
def test_one_queue_needs_the_worker_that_runs_both(
    role: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_TASK_QUEUE", "shared")
    monkeypatch.setenv("KEEL_LLM_TASK_QUEUE", "shared")
    with pytest.raises(SystemExit) as stop:
        parse_args(["--role", role])
    assert stop.value.code == 2
    assert "needs --role all" in capsys.readouterr().err
