"""The benchmark's baselines run the same graph as the workflow, so comparisons are fair.

No wall-clock time is asserted here: only paths, answers and call counts. The tests
marked `bench` need the `bench` extra (LangGraph, psutil): `make bench` installs it
and runs them before the measurements; `make test` deselects them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.prompts import PromptBook
from harness.bench.plain_flow import FlowState, ResearchNodes, run_plain
from harness.testing.stack import (
    new_id,
    research_on_workers,
    running_workers,
    scripted_input,
    worker_settings,
)

QUESTION = "How do idempotency keys make retries safe?"


async def _floor(store: DocumentStore, script: str) -> FlowState:
    settings = worker_settings()
    nodes = ResearchNodes(
        build_gateway(settings, PromptBook.load()),
        store,
        scripted_input(script, settings, QUESTION),
    )
    return await run_plain(nodes, scripted_input(script, settings, QUESTION))


async def test_floor_takes_the_workflows_path_to_the_same_answer(
    client: Client, store: DocumentStore
) -> None:
    _, report = await research_on_workers(client, store, "refine_and_revise", QUESTION)
    floor = await _floor(store, "refine_and_revise")
    assert floor["visits"] == [v.node for v in report.visits]
    assert floor["answer"] == report.answer
    assert sum(floor["calls"].values()) == report.usage.calls


@pytest.mark.bench
async def test_langgraph_peer_makes_the_same_calls_to_the_same_answer(
    store: DocumentStore, tmp_path: Path
) -> None:
    from harness.bench.langgraph_peer import checkpointed, run_langgraph

    settings = worker_settings()
    request = scripted_input("refine_and_revise", settings, QUESTION)
    floor = await _floor(store, "refine_and_revise")
    nodes = ResearchNodes(build_gateway(settings, PromptBook.load()), store, request)
    async with checkpointed(nodes, tmp_path / "checkpoints.db") as graph:
        result = await run_langgraph(graph, request, "thread-1")
    assert result["answer"] == floor["answer"]
    assert result["calls"] == floor["calls"]
    assert (tmp_path / "checkpoints.db").stat().st_size > 0


@pytest.mark.bench
async def test_node_timings_cover_every_node_the_flow_visited(
    client: Client, store: DocumentStore
) -> None:
    from harness.bench.step_overhead import model_call_spans, node_durations
    from harness.bench.workflows import UpsertingResearchWorkflow

    async with running_workers(
        client, store, extra_workflows=[UpsertingResearchWorkflow]
    ) as settings:
        workflow_id = new_id()
        report = await client.execute_workflow(
            UpsertingResearchWorkflow.run,
            scripted_input("refine_and_revise", settings, QUESTION),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    durations, _ = node_durations(history)
    assert set(durations) == {v.node for v in report.visits}
    assert all(seconds >= 0 for seconds in durations.values())
    # One span per model call, each from its scheduling to its completion.
    spans = model_call_spans(history)
    assert len(spans) == report.usage.calls
    assert all(seconds >= 0 for seconds in spans)
