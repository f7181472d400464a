"""The research state machine on the real dev server, with scripted model answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from activities.documents.store import DocumentStore
from harness.testing.research import activity_summaries, path
from harness.testing.stack import (
    NARROW,
    QUESTION,
    current_details,
    execute_scripted,
    failed_research,
    research_on_workers,
    running_workers,
    typed_cause,
)
from keel.payloads.llm import Budget
from workflows.research import ResearchWorkflow
from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS


async def test_refine_and_revise_loops_deliver_a_reviewed_cited_report(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        workflow_id, report = await execute_scripted(
            client, settings, "narrow_refine_and_revise", NARROW
        )
        progress = await client.get_workflow_handle_for(ResearchWorkflow.run, workflow_id).query(
            ResearchWorkflow.progress
        )
        # Progress reaches the Web UI as the run's current details, not an upsert per node.
        details = await current_details(client, workflow_id)

    assert path(report) == [
        "plan:success",
        "retrieve:success",
        "check_evidence:not enough",
        "refine_query:success",
        "retrieve:success",
        "check_evidence:enough evidence",
        "write:success",
        "check_draft:pass",
        "review:success",
        "verdict:fail",
        "plan:success",
        "retrieve:success",
        "check_evidence:enough evidence",
        "write:success",
        "check_draft:pass",
        "review:success",
        "verdict:pass",
        "deliver:delivered",
    ]
    assert report.review_passed
    assert report.review_score == 4
    assert report.iterations == 2
    assert report.refinements == 1
    assert report.flags == []
    assert report.answer.startswith("Jitter adds a random spread to each backoff wait")
    # The one passage about jitter, found by the question itself, is cited.
    assert [c.chunk_id for c in report.citations] == ["demo/retries-and-backoff#1"]
    assert report.usage.calls == 7
    assert report.provider == "scripted"
    assert set(report.prompts) == {"plan", "refine_query", "write", "review_rubric"}
    # The verdict is the rubric's: weights 2, 2, 1 over scores of 4, threshold 3.5.
    assert report.review is not None
    assert report.review.weighted_score == 4.0
    assert report.review.threshold == 3.5
    assert all(len(h) == 16 for h in report.prompts.values())

    assert progress.status == "delivered"
    assert progress.node == "deliver"
    assert progress.usage == report.usage
    assert progress.evidence >= 2

    summaries = await activity_summaries(client, workflow_id)
    # The contracts first: what the caller may read is decided before any model call.
    assert summaries[:4] == [
        "load contracts",
        "plan #1",
        "retrieve: zzqx flurble",
        "refine_query #1",
    ]
    assert "review #2" in summaries

    assert details.startswith("[delivered] node=deliver iteration=2 refinements=1")
    description = await client.get_workflow_handle(workflow_id).describe()
    assert RESEARCH_NODE.name not in description.search_attributes
    assert RESEARCH_STATUS.name not in description.search_attributes


async def test_a_plan_whose_queries_find_nothing_is_saved_by_the_questions_own_search(
    client: Client, store: DocumentStore
) -> None:
    """The plan's query finds nothing; the question's own search, fused in, finds enough."""
    _workflow_id, report = await research_on_workers(client, store, "refine_and_revise", QUESTION)
    assert path(report)[:4] == [
        "plan:success",
        "retrieve:success",
        "check_evidence:enough evidence",
        "write:success",
    ]
    assert report.refinements == 0
    assert report.usage.calls == 6  # no refine call: 2 plans, 2 drafts, 2 reviews
    assert report.review_passed
    assert {c.doc_id for c in report.citations} == {"demo/idempotency-keys"}


async def test_revision_bound_delivers_the_best_draft_flagged(
    client: Client, store: DocumentStore
) -> None:
    _workflow_id, report = await research_on_workers(
        client, store, "never_passes", "What states does a circuit breaker have?"
    )
    assert report.flags == ["max_revisions_reached"]
    assert not report.review_passed
    assert report.review_score == 3  # the second of three drafts scored best
    assert report.answer.startswith("A circuit breaker opens after too many failures")
    assert report.iterations == 3
    assert path(report)[-2:] == ["verdict:bound reached", "deliver:delivered"]


async def test_schema_violations_are_reasked_with_the_error_then_accepted(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, report = await research_on_workers(
        client, store, "malformed_then_valid", "How does a saga undo its steps?"
    )
    assert report.reasks == 3  # two broken plans, one too-short draft
    assert report.usage.calls == 6  # 3 plans, 2 drafts, 1 review: rejected ones count too
    assert report.flags == []
    assert report.review_passed
    assert any("saga" in c.doc_id for c in report.citations)
    summaries = await activity_summaries(client, workflow_id)
    assert summaries[1:4] == ["plan #1", "plan #2 (re-ask 1)", "plan #3 (re-ask 2)"]
    # Re-asks are separate activities, each a first attempt: not transport retries.
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert set(started) == {1}


async def test_reask_limit_takes_the_plan_fallback_edge(
    client: Client, store: DocumentStore
) -> None:
    _workflow_id, report = await research_on_workers(
        client, store, "plan_always_broken", "Why add jitter to retries with backoff?"
    )
    assert "plan_fallback" in report.flags
    assert path(report)[0] == "plan:schema failure"
    assert report.reasks == 2  # max_reasks=2: three tries in all, then the fallback edge
    # Rejected answers cost tokens too: 3 broken plans, a draft and a review.
    assert report.usage.calls == 5
    assert report.citations  # the question itself found evidence


async def test_refinement_bound_writes_with_what_there_is(
    client: Client, store: DocumentStore
) -> None:
    # Passages about the question, but fewer than the run asks for.
    _workflow_id, report = await research_on_workers(
        client, store, "no_evidence", "What is an idempotency key?", min_evidence=6
    )
    assert report.refinements == 2
    # The scripted draft says the corpus holds nothing, which its passages do not support.
    assert report.flags == ["insufficient_evidence", "check_failed:citations"]
    assert report.citations
    assert "check_evidence:bound reached" in path(report)


async def test_missing_script_fails_the_run_with_a_typed_error(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, failure = await failed_research(
        client, store, "no_such_script", "Anything at all?"
    )
    typed_cause(failure, "ScriptMissing")
    description = await client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.FAILED


async def test_every_task_replays_from_history_without_a_cache(
    client: Client, store: DocumentStore
) -> None:
    _workflow_id, report = await research_on_workers(
        client, store, "narrow_refine_and_revise", NARROW, max_cached_workflows=0
    )
    assert report.review_passed
    assert report.usage.calls == 7


async def test_a_budget_running_out_mid_flow_delivers_the_draft_flagged_without_overspending(
    client: Client, store: DocumentStore
) -> None:
    _, report = await research_on_workers(
        client, store, "narrow_refine_and_revise", NARROW, budget=Budget(max_tokens=1500)
    )
    assert report.flags == ["budget_exhausted", "unreviewed"]
    assert path(report)[-2:] == ["review:budget exhausted", "deliver:delivered"]
    assert report.usage.calls == 3  # plan, refine, write; the review did not fit
    assert report.usage.tokens <= 1500
    assert report.answer.startswith("Jitter adds a random spread to each wait")
    assert report.citations


async def test_a_budget_running_out_after_a_review_delivers_the_reviewed_draft_not_unreviewed(
    client: Client, store: DocumentStore
) -> None:
    """The draft was reviewed (and failed): the flags say the budget ran out, not that no
    review happened; the report carries the review it got."""
    _, report = await research_on_workers(
        client, store, "narrow_refine_and_revise", NARROW, budget=Budget(max_tokens=2000)
    )
    # The revision's plan and search fit; its write does not.
    assert "verdict:fail" in path(report)
    assert path(report)[-2:] == ["write:budget exhausted", "deliver:delivered"]
    assert report.flags == ["budget_exhausted"]
    assert report.review is not None
    assert report.review_score == 2
    assert not report.review_passed
    assert report.answer.startswith("Jitter adds a random spread to each wait")


async def test_a_passed_deadline_stops_model_calls_and_delivers_the_evidence_flagged(
    client: Client, store: DocumentStore
) -> None:
    _, report = await research_on_workers(
        client,
        store,
        "refine_and_revise",
        QUESTION,
        budget=Budget(deadline=datetime(2020, 1, 1, tzinfo=UTC)),
    )
    assert report.usage.calls == 0
    assert report.flags == ["budget_exhausted", "no_draft", "no_evidence"]
    assert report.citations == []
    assert path(report) == ["plan:budget exhausted", "deliver:delivered"]


async def test_a_straight_flow_writes_no_event_per_node(
    client: Client, store: DocumentStore
) -> None:
    """Plan, search, write and review in 25 events, none of them for progress.

    Node and status reach the Web UI as the run's current details; the history holds
    no search-attribute upsert and no patch marker (with its `TemporalChangeVersion`
    upsert): the start, 4 workflow tasks, 3 activities, 2 local activities, the end.
    """
    question = "How do heartbeats find a crashed worker?"
    workflow_id, report = await research_on_workers(client, store, "slow_pass", question)
    assert [v.node for v in report.visits] == [
        "plan", "retrieve", "check_evidence", "write", "check_draft", "review", "verdict",
        "deliver",
    ]  # fmt: skip
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds = Counter(e.event_type for e in history.events)
    assert kinds[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] == 0
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert [m.marker_recorded_event_attributes.marker_name for m in markers] == [
        "core_local_activity",  # the contracts
        "core_local_activity",  # the search
    ]
    assert kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED] == 4
    assert kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED] == 3
    assert len(history.events) == 25
