"""Reading a research run: the path it took, its activities' summaries, contracts for it."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.contracts.loader import load_contracts
from harness.testing.stack import plaintext
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.research import ResearchReport


def path(report: ResearchReport) -> list[str]:
    """The nodes the run visited, with each visit's outcome."""
    return [f"{v.node}:{v.outcome}" for v in report.visits]


async def activity_summaries(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    # Retrieval runs as a local activity: its summary is on its marker.
    kinds = (EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_MARKER_RECORDED)
    # Summaries are payloads, encrypted like the rest.
    return [
        json.loads((await plaintext(client, e.user_metadata.summary)).data)
        for e in history.events
        if e.event_type in kinds and e.user_metadata.HasField("summary")
    ]


def extractive_for_scripted(flow: str = "research") -> ContractSnapshot:
    """The shipped contracts, with the scripted model allowed an extract like the local one."""
    contracts = load_contracts()
    allowed = contracts.quality.flow(flow).model_copy(
        update={"extractive_fallback": ["local", "scripted"]}
    )
    quality = contracts.quality.model_copy(
        update={"flows": {**contracts.quality.flows, flow: allowed}}
    )
    return contracts.model_copy(update={"quality": quality})
