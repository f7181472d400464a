"""The coordinator-worker team on the real dev server, with a scripted model."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore
from harness.testing.processes import run_script
from harness.testing.research import extractive_for_scripted
from harness.testing.stack import (
    TEAM_REQUEST,
    new_id,
    plaintext,
    running_workers,
    scripted_team_input,
)
from keel.infra.codec import data_converter
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentInput
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.coordinator import CoordinatorInput, CoordinatorProgress, MultiAgentReport
from keel.payloads.llm import Budget
from workflows.agent import AgentWorkflow
from workflows.coordinator import CoordinatorWorkflow


def team_input(script: str, llm_task_queue: str, **overrides: object) -> CoordinatorInput:
    fields: dict[str, object] = {"request": TEAM_REQUEST, **overrides}
    return scripted_team_input(CoordinatorInput, script, llm_task_queue, **fields)


async def run_team(
    client: Client, settings: WorkerSettings, script: str, prefix: str = "team", **overrides: object
) -> tuple[str, MultiAgentReport]:
    """One team run on a scripted model, to its report; returns its workflow id too."""
    handle = await client.start_workflow(
        CoordinatorWorkflow.run,
        team_input(script, settings.llm_task_queue, **overrides),
        id=new_id(prefix),
        task_queue=settings.task_queue,
    )
    return handle.id, await handle.result()


async def team_run(
    client: Client,
    store: DocumentStore,
    script: str,
    *,
    contracts: ContractSnapshot | None = None,
    prefix: str = "team",
    **overrides: object,
) -> tuple[str, MultiAgentReport]:
    """Workers of the test's own and one team run on them, for a test that reads its report."""
    async with running_workers(client, store, contracts=contracts) as settings:
        return await run_team(client, settings, script, prefix, **overrides)


async def test_team_fans_out_researchers_and_revises_until_the_rubric_passes(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        workflow_id, report = await run_team(client, settings, "team_report")
        progress = await client.get_workflow_handle_for(CoordinatorWorkflow.run, workflow_id).query(
            CoordinatorWorkflow.progress
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()

    # Researchers: one per sub-question, started together before either finished.
    assert [r.question for r in report.researchers] == [
        "How do idempotency keys make retries safe?",
        "What does a circuit breaker do when it opens?",
    ]
    assert all(r.status == "done" and r.passages for r in report.researchers)
    kinds = [e.event_type for e in history.events]
    started = [
        i
        for i, k in enumerate(kinds)
        if k == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    completed = [
        i
        for i, k in enumerate(kinds)
        if k == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    ]
    assert started[1] < completed[0]
    assert len(started) == 2 + 2 * 2  # researchers, then writer + reviewer twice

    # Rubric: round 1 scores 2.8 (< 3.5), round 2 scores 4.0 and passes.
    assert [(r.round, r.weighted_score, r.passed, r.trigger) for r in report.rounds] == [
        (1, 2.8, False, "first draft"),
        (2, 4.0, True, "reviewer"),
    ]
    assert report.passed
    assert report.answer.startswith("An idempotency key derived from the workflow")
    known = store.document_ids("demo")
    assert report.citations
    assert all(c.doc_id in known for c in report.citations)
    assert {"decompose", "researcher_turn", "researcher_final", "writer", "reviewer"} <= set(
        report.prompts
    )
    assert set(report.contract_versions) >= {"agents.toml", "tools.toml", "rubrics.toml"}
    assert report.usage.calls == 1 + 2 * 3 + 2 * 2
    assert progress.stage == "delivered"
    assert progress.rounds == report.rounds

    researcher = await client.get_workflow_handle_for(
        AgentWorkflow.run, report.researchers[0].workflow_id
    ).result()
    assert researcher.decisions[0].allowed
    assert researcher.decisions[0].tool == "search_documents"


async def child_inputs(client: Client, workflow_id: str) -> list[AgentInput]:
    """The children's inputs as recorded: ciphertext in the history, decrypted here."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    converter = data_converter()
    return [
        (
            await converter.decode(
                e.start_child_workflow_execution_initiated_event_attributes.input.payloads,
                [AgentInput],
            )
        )[0]
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]


async def test_children_share_the_budget_and_never_spend_more_than_is_left(
    client: Client, store: DocumentStore
) -> None:
    limit = 700
    async with running_workers(client, store) as settings:
        workflow_id, report = await run_team(
            client, settings, "team_report", "team-budget", budget=Budget(max_tokens=limit)
        )
    inputs = await child_inputs(client, workflow_id)

    assert "budget_exhausted" in report.flags
    assert report.usage.tokens <= limit
    researchers = [i for i in inputs if i.agent == "researcher"]
    assert len(researchers) == 2
    shares = [i.budget.max_tokens for i in researchers]
    assert all(s is not None for s in shares)
    # Two researchers at once: together they get what the coordinator had left after
    # planning, no more; each spends within its share.
    assert sum(s for s in shares if s is not None) < limit
    for run in report.researchers:
        result = await client.get_workflow_handle_for(AgentWorkflow.run, run.workflow_id).result()
        share = next(i.budget.max_tokens for i in researchers if i.task == run.question)
        assert share is not None
        assert result.usage.tokens <= share
    later = [i for i in inputs if i.agent != "researcher"]
    assert all(i.budget.max_tokens is not None and i.budget.max_tokens < limit for i in later)


async def test_a_person_sends_feedback_then_approves_from_the_cli(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    workflow_id = new_id("team-hitl")
    async with running_workers(client, store) as settings:
        handle = await client.start_workflow(
            CoordinatorWorkflow.run,
            team_input("team_report", settings.llm_task_queue, require_approval=True),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        waiting = await wait_for_stage(handle, "awaiting_approval", rounds=2)
        # The person sees the draft they are asked to decide on.
        assert waiting.draft.startswith("An idempotency key derived from the workflow")
        env = {"KEEL_TASK_QUEUE": settings.task_queue}
        sent = await run_script(
            "client.py", "--address", server_address,
            "feedback", workflow_id, "Add one sentence on jitter.", "--by", "dana",
            env=env,
        )  # fmt: skip
        assert sent.code == 0, sent.stderr
        await wait_for_stage(handle, "awaiting_approval", rounds=3)
        approved = await run_script(
            "client.py", "--address", server_address, "approve", workflow_id, "--by", "dana",
            env=env,
        )  # fmt: skip
        assert approved.code == 0, approved.stderr
        report = await handle.result()
        again = await run_script(
            "client.py", "--address", server_address, "approve", workflow_id, env=env
        )
        listed = await run_script(
            "client.py", "--address", server_address, "list", "--type", "report", "--json",
            "--limit", "100",
        )  # fmt: skip
    assert report.decision == "approve"
    assert [r.trigger for r in report.rounds] == ["first draft", "reviewer", "human"]
    assert [f.text for f in report.feedback] == ["Add one sentence on jitter."]
    assert report.feedback[0].by == "dana"
    assert again.code == 1  # nothing is awaiting a decision any more
    rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
    assert rows[workflow_id]["type"] == "CoordinatorWorkflow"
    assert rows[workflow_id]["research_status"] == "delivered"
    assert rows[workflow_id]["node"] == "delivered"


async def test_no_decision_in_time_takes_the_default(client: Client, store: DocumentStore) -> None:
    _, report = await team_run(
        client,
        store,
        "team_report",
        prefix="team-timeout",
        require_approval=True,
        approval_timeout_seconds=1,
        approval_default="reject",
    )
    assert report.decision == "reject"
    assert {"approval_timed_out", "rejected"} <= set(report.flags)


async def wait_for_stage(
    handle: WorkflowHandle[CoordinatorWorkflow, MultiAgentReport], stage: str, rounds: int
) -> CoordinatorProgress:
    for _ in range(300):
        progress = await handle.query(CoordinatorWorkflow.progress)
        if progress.stage == stage and len(progress.rounds) == rounds:
            return progress
        await asyncio.sleep(0.1)
    raise AssertionError(f"never reached {stage} after {rounds} rounds: {progress}")


async def test_a_team_with_no_readable_namespace_is_refused_before_planning(
    client: Client, store: DocumentStore
) -> None:
    workflow_id = new_id("team-refused")
    async with running_workers(client, store) as settings:
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                CoordinatorWorkflow.run,
                team_input("team_report", settings.llm_task_queue, version="9"),
                id=workflow_id,
                task_queue=settings.task_queue,
            )
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "NoReadableNamespace"
    assert "demo: version 2, not 9" in cause.message
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["load_contracts"]  # no plan call, no researcher
    [failed] = [
        e.workflow_execution_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    ]
    [attributes] = client.data_converter.payload_converter.from_payloads(
        [await plaintext(client, failed.encoded_attributes)]
    )
    assert attributes["stack_trace"] == ""


async def test_a_team_draft_failing_the_checks_is_rewritten_without_a_reviewer(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, report = await team_run(client, store, "team_checks")
    # The coordinator asked the same question twice and never about circuit breakers.
    assert [r.question for r in report.researchers] == [
        "How do idempotency keys make retries safe?",
        "What is an idempotency key?",
        "What do the documents say about circuit breakers?",
    ]
    first, second = report.rounds
    assert {f.rule for f in first.check_failures} >= {"internal_text", "debris", "truncated"}
    assert first.reviewer_workflow_id == ""
    assert (second.trigger, second.passed, second.check_failures) == ("checks", True, [])
    inputs = await child_inputs(client, workflow_id)
    children = [a.agent for a in inputs]
    assert children.count("reviewer") == 1  # the failing draft cost no review
    assert children.count("writer") == 2
    # The writer's second round got the rules' feedback, not the reviewer's.
    writer = [a for a in inputs if a.agent == "writer"][1]
    assert "notes meant for you" in writer.feedback
    assert "Feedback on the last version" not in report.answer
    assert "too short" not in report.answer
    assert report.passed
    assert report.flags == []


async def test_a_team_draft_that_never_passes_is_delivered_flagged_by_rule(
    client: Client, store: DocumentStore
) -> None:
    _, report = await team_run(client, store, "team_never_checks")
    # The scripted model is not in the contract's extractive_fallback: the draft, flagged.
    assert not report.extractive
    assert not report.passed
    assert {"check_failed:internal_text", "check_failed:debris"} <= set(report.flags)
    assert {f.rule for f in report.check_failures} >= {"internal_text", "debris"}
    assert len(report.rounds) == 2  # the first draft and one rewrite (max_rewrites = 1)
    assert all(r.reviewer_workflow_id == "" for r in report.rounds)
    # Delivered flagged, but without the sentence that was the flow's own feedback.
    assert "Feedback on the last version" not in report.answer
    assert "did not pass the rubric" not in report.answer
    assert report.answer.startswith("Idempotency keys make retries safe")


async def test_with_the_extract_allowed_the_team_delivers_the_passages_sentences(
    client: Client, store: DocumentStore
) -> None:
    contracts = extractive_for_scripted("report")
    _, report = await team_run(client, store, "team_never_checks", contracts=contracts)
    assert report.extractive
    assert "extractive" in report.flags
    assert not report.passed
    assert report.check_failures == []
    assert "Feedback on the last version" not in report.answer
    assert report.citations
    for citation in report.citations:
        assert f"[{citation.number}]" in report.answer


async def test_sub_questions_no_researcher_can_take_are_dropped_before_any_starts(
    client: Client, store: DocumentStore
) -> None:
    """A small coordinator's debris and stray words never become a researcher's task."""
    workflow_id, report = await team_run(client, store, "team_broken_questions")
    questions = [r.question for r in report.researchers]
    assert questions == [
        "How do idempotency keys make retries safe?",
        "What do the documents say about circuit breakers?",
    ]
    assert "questions_rejected" in report.flags
    tasks = [a.task for a in await child_inputs(client, workflow_id) if a.agent == "researcher"]
    assert tasks == questions
    assert {c.doc_id for c in report.citations} <= {
        "demo/idempotency-keys",
        "demo/circuit-breakers",
    }
    assert report.passed


async def test_a_request_the_documents_do_not_answer_gets_no_report_written(
    client: Client, store: DocumentStore
) -> None:
    request = "Write a report on how Kafka consumer groups rebalance partitions"
    workflow_id, report = await team_run(client, store, "team_not_in_corpus", request=request)
    assert report.flags == ["not_in_corpus"]
    assert report.answer.startswith("The documents searched do not answer")
    assert report.citations == []
    assert not report.passed
    assert report.rounds == []
    # The researchers ran; no writer or reviewer was started.
    assert {a.agent for a in await child_inputs(client, workflow_id)} == {"researcher"}
    assert report.usage.calls == 1 + 2 * 3  # the split, then each researcher's 3 calls


async def test_at_the_round_limit_the_team_delivers_an_extract_not_a_rejected_draft(
    client: Client, store: DocumentStore
) -> None:
    contracts = extractive_for_scripted("report")
    _, report = await team_run(client, store, "team_report", max_rounds=1, contracts=contracts)
    # The one round's draft scored 2.8 against 3.5: the passages' sentences go out.
    assert [(r.weighted_score, r.passed) for r in report.rounds] == [(2.8, False)]
    assert report.flags == ["max_rounds_reached", "extractive"]
    assert report.extractive
    assert not report.passed
    assert not report.answer.startswith("Retries are safe with keys")
    assert report.citations
    for citation in report.citations:
        assert f"[{citation.number}]" in report.answer


async def test_a_revision_that_breaks_a_rule_with_no_rewrite_left_ends_in_an_extract(
    client: Client, store: DocumentStore
) -> None:
    """Round 1 passes the checks and fails the review; its revisions break rules until no
    rewrite is left: the rejected draft does not go out as if nothing happened."""
    contracts = extractive_for_scripted("report")
    _, report = await team_run(client, store, "team_revision_breaks_rules", contracts=contracts)
    assert [(r.trigger, r.passed, bool(r.check_failures)) for r in report.rounds] == [
        ("first draft", False, False),
        ("reviewer", False, True),
        ("checks", False, True),
    ]
    assert report.extractive
    assert {"check_failed:debris", "extractive"} <= set(report.flags)
    assert not report.passed
    assert not report.answer.startswith("Retries are safe with keys")
