"""Clearance at the store's boundary: the search activity refuses namespaces above the caller."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.contracts.loader import load_contracts
from activities.documents.activities import DocumentActivities
from activities.documents.store import DocumentStore
from models.contracts import SecurityLevel
from models.documents import SearchRequest
from tests.conftest import (
    failed_research,
    research_on_workers,
    typed_cause,
)

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


async def test_unlisted_namespaces_count_as_public(store: DocumentStore) -> None:
    open_store = DocumentActivities(store)  # no levels: everything is public
    result = await open_store.search(request("public", "postmortems"))
    assert result.passages
    guarded = DocumentActivities(store, {"postmortems": "internal"})
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


async def test_public_research_run_asking_for_postmortems_fails_access_denied(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, failure = await failed_research(
        client, store, "postmortem_lookup", QUESTION, namespaces=["postmortems"]
    )
    # The search runs as a local activity: its failure reaches the workflow directly.
    assert typed_cause(failure, "AccessDenied").non_retryable
    # Refused before any search: nothing was retrieved, nothing written.
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED in kinds
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["complete_llm"]  # the plan, then the refused search


async def test_restricted_research_run_cites_a_postmortem(
    client: Client, store: DocumentStore
) -> None:
    _workflow_id, report = await research_on_workers(
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
