"""Clearance at the store's boundary: the search activity refuses namespaces above the caller."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ActivityError, ApplicationError

from activities.contracts.loader import load_contracts
from activities.documents.activities import DocumentActivities
from activities.documents.store import DocumentStore
from harness.testing.stack import (
    new_id,
    plaintext,
    research_on_workers,
    running_workers,
    scripted_input,
)
from keel.payloads.clearance import SecurityLevel
from keel.payloads.documents import PassagesRequest, SearchRequest
from keel.rules.extractive import extract_for_questions
from workflows.research import ResearchWorkflow

QUESTION = "What went wrong with Blueheron's ticket dedup?"


@pytest.fixture
def documents(store: DocumentStore) -> DocumentActivities:
    """Levels from contracts/routes.toml, as worker.py builds them."""
    routes = load_contracts().routes
    return DocumentActivities(store, {n: ns.security for n, ns in routes.namespaces.items()})


def request(clearance: SecurityLevel, *namespaces: str) -> SearchRequest:
    return SearchRequest(
        namespace="demo",
        namespaces=list(namespaces),
        queries=["Blueheron dedup outage"],
        clearance=clearance,
    )


async def test_search_refuses_a_restricted_namespace_to_a_public_caller(
    documents: DocumentActivities,
) -> None:
    with pytest.raises(ApplicationError) as denied:
        await documents.search(request("public", "postmortems"))
    assert denied.value.type == "AccessDenied"
    assert denied.value.non_retryable
    assert "postmortems" in denied.value.message
    assert "restricted" in denied.value.message


async def test_search_allows_a_restricted_namespace_to_a_restricted_caller(
    documents: DocumentActivities,
) -> None:
    result = await documents.search(request("restricted", "postmortems"))
    assert result.passages[0].namespace == "postmortems"
    assert "Blueheron" in result.passages[0].text


async def test_an_undeclared_namespace_is_refused_at_the_store_too(store: DocumentStore) -> None:
    undeclared = DocumentActivities(store, {"demo": "public"})
    with pytest.raises(ApplicationError) as refused:
        await undeclared.search(request("restricted", "postmortems"))
    assert refused.value.type == "UnknownNamespace"
    assert refused.value.non_retryable
    guarded = DocumentActivities(store, {"demo": "public", "postmortems": "internal"})
    with pytest.raises(ApplicationError, match="internal"):
        await guarded.search(request("public", "postmortems"))
    assert (await guarded.search(request("internal", "postmortems"))).passages


def test_read_applies_the_same_clearance_rule(
    documents: DocumentActivities, store: DocumentStore
) -> None:
    chunk_id = store.search("postmortems", ["Blueheron"], 1)[0].chunk_id
    with pytest.raises(ApplicationError) as denied:
        documents.read(chunk_id, "internal")
    assert denied.value.type == "AccessDenied"
    assert documents.read(chunk_id, "restricted").chunk_id == chunk_id
    assert documents.read("demo/idempotency-keys#1", "public").namespace == "demo"
    with pytest.raises(ApplicationError) as missing:
        documents.read("demo/no-such-document#0", "restricted")
    assert missing.value.type == "PassageNotFound"


async def refused_run(
    client: Client, store: DocumentStore, **overrides: object
) -> tuple[ApplicationError, WorkflowHistory]:
    """A research run that should be refused: its root cause and its history."""
    async with running_workers(client, store) as settings:
        workflow_id = new_id()
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                ResearchWorkflow.run,
                scripted_input("postmortem_lookup", settings, QUESTION, **overrides),
                id=workflow_id,
                task_queue=settings.task_queue,
            )
    cause: BaseException | None = failure.value.cause
    while isinstance(cause, ActivityError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return cause, history


async def test_public_research_run_asking_for_postmortems_is_refused_before_any_model_call(
    client: Client, store: DocumentStore
) -> None:
    cause, history = await refused_run(client, store, namespaces=["postmortems"])
    assert cause.type == "AccessDenied"
    assert cause.non_retryable
    assert (
        cause.message == "namespace 'postmortems' is restricted; clearance public may not read it"
    )
    # Refused before any model call or search: only the contracts were read.
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED in kinds
    # One local activity, the contracts': the search, a local activity too, would add
    # a second; no activity at all was scheduled. (The other markers are patches.)
    local = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(local) == 1
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds


async def test_a_refusal_stores_one_line_and_no_stack_trace_in_the_history(
    client: Client, store: DocumentStore
) -> None:
    _cause, history = await refused_run(client, store, namespaces=["postmortems"])
    [failed] = [
        e.workflow_execution_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    ]
    assert failed.application_failure_info.type == "AccessDenied"
    assert failed.stack_trace == ""
    # Message and trace travel in the encrypted encoded attributes: read them there.
    [attributes] = client.data_converter.payload_converter.from_payloads(
        [await plaintext(client, failed.encoded_attributes)]
    )
    assert attributes["stack_trace"] == ""
    assert "\n" not in attributes["message"]
    assert attributes["message"].startswith("namespace 'postmortems' is restricted")


async def test_an_undeclared_namespace_is_refused_not_taken_as_public(
    client: Client, store: DocumentStore
) -> None:
    cause, history = await refused_run(client, store, namespace="etc")
    assert cause.type == "UnknownNamespace"
    assert "'etc' is not declared in routes.toml" in cause.message
    assert not any(
        e.activity_task_scheduled_event_attributes.activity_type.name == "complete_llm"
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def test_restricted_research_run_cites_a_postmortem(
    client: Client, store: DocumentStore
) -> None:
    _, report = await research_on_workers(
        client,
        store,
        "postmortem_lookup",
        QUESTION,
        namespaces=["postmortems"],
        clearance="restricted",
    )
    assert report.review_passed
    assert report.citations[0].doc_id == "postmortems/2024-03-ticket-dedup-outage"
    assert "Blueheron" in report.citations[0].passage


async def test_a_search_scores_what_it_found_against_the_question_it_serves(
    documents: DocumentActivities,
) -> None:
    """A plan's broad query finds a document's chunks; the question tells which answers it."""
    question = "How should an idempotency key be derived from the workflow id and step?"
    found = await documents.search(
        SearchRequest(namespace="demo", queries=["idempotency key"], limit=5, rank_for=question)
    )
    scores = {p.chunk_id: p.question_score for p in found.passages}
    assert "demo/idempotency-keys#2" in scores  # "Deriving the key"
    assert scores["demo/idempotency-keys#2"] == max(scores.values()) > 0
    # Without a question, nothing is scored: the passages keep the default.
    plain = await documents.search(SearchRequest(namespace="demo", queries=["idempotency key"]))
    assert {p.question_score for p in plain.passages} == {0.0}


async def test_a_search_also_searches_the_question_when_the_plan_misses_the_answer(
    documents: DocumentActivities,
) -> None:
    """A plan's query that misses the answering chunk: the question's own search brings it."""
    question = "Why does a retry policy need a maximum number of attempts?"
    answer = "demo/retries-and-backoff#3"  # "Retry-After and maximum attempts"
    planned = SearchRequest(namespace="demo", queries=["retry policy errors"], limit=3)
    missed = await documents.search(planned)
    assert answer not in [p.chunk_id for p in missed.passages]
    found = await documents.search(planned.model_copy(update={"rank_for": question}))
    chunks = [p.chunk_id for p in found.passages]
    assert answer in chunks
    assert len(chunks) == 3
    # What the plan's query ranked first stays: fusion keeps the top of either ranking.
    assert missed.passages[0].chunk_id in chunks
    best = max(found.passages, key=lambda p: p.question_score)
    assert best.chunk_id == answer
    assert [p.score for p in found.passages] == sorted(
        (p.score for p in found.passages), reverse=True
    )


async def test_reading_passages_scores_them_against_each_question_asked(
    documents: DocumentActivities,
) -> None:
    """A team's passages, scored per sub-question: the store's bm25 picks the answer where
    the share of words did not (a Korean question seen in the evaluation)."""
    question = "멱등성 키는 무엇으로 만들어야 하나요?"  # how should the key be derived?
    ids = ["demo-ko/idempotency-keys#1", "demo-ko/idempotency-keys#2"]
    read = await documents.passages(
        PassagesRequest(chunk_ids=ids, rank_for=[question, "What is a saga?"])
    )
    assert [p.chunk_id for p in read.passages] == ids
    [korean, saga] = read.ranks
    assert korean[1] > korean[0] > 0  # "Deriving the key" first
    assert saga == [0.0, 0.0]
    texts = [f"{p.title}: {p.text}" for p in read.passages]
    assert extract_for_questions([question], texts, [korean]).citations == [2]  # type: ignore[union-attr]
    plain = await documents.passages(PassagesRequest(chunk_ids=ids))
    assert plain.ranks == []
