"""Read a run's live channel by query, so that watching a run adds nothing to its history.

The SDK's subscriber long-polls the channel by update. Each poll is recorded in the
watched run's history, as two events and a workflow task, so a watcher changes the
history it watches. Measured with temporalio 1.35.0, a worker killed while a poll's
task waited on its sticky queue left a history that no longer replayed
(docs/live-runs.md). The stream's query answers the same read at once, from the
worker's cached run, and records nothing. The price is a read every so often while
nothing is new: every 100 ms after news, slowing to every 500 ms in a quiet stretch
(a run waiting an hour for an approval costs its worker two reads a second).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.workflow_streams import PollInput, PollResult
from temporalio.service import RPCError, RPCStatusCode

from keel.payloads.live import LiveEvent

POLL_QUERY = "__temporal_workflow_stream_poll"  # the SDK stream's own read
QUIET_COOLDOWN = timedelta(milliseconds=500)  # the slowest a watcher reads while nothing is new
READ_TIMEOUT = timedelta(seconds=30)  # a restarted worker answers after its sticky queue times out
# While the run is open, a read that fails this way waits for a worker and tries again.
TRANSIENT = frozenset(
    {
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
    }
)


async def read_channel(
    client: Client, workflow_id: str, topics: list[str], cooldown: timedelta
) -> AsyncIterator[LiveEvent]:
    """Every event on `topics` from the run's start until it closed and was read to the end.

    Follows continue-as-new: the handle names no run, so each read goes to the newest.
    """
    handle = client.get_workflow_handle(workflow_id)
    converter = client.data_converter.payload_converter
    offset, closed, wait = 0, False, cooldown.total_seconds()
    while True:
        result = await _read(handle, PollInput(topics=topics, from_offset=offset), cooldown)
        for item in result.items:
            payload = Payload()
            payload.ParseFromString(base64.b64decode(item.data))
            yield converter.from_payload(payload, LiveEvent)
        offset = result.next_offset
        if result.more_ready:
            continue
        if closed:
            return
        if result.items:
            wait = cooldown.total_seconds()
        else:
            # Quiet: the run may have closed, and then one more read takes its last events.
            closed = await _closed(handle)
            if closed:
                continue
            wait = min(wait * 1.5, QUIET_COOLDOWN.total_seconds())
        await asyncio.sleep(wait)


async def _read(
    handle: WorkflowHandle[object, object], poll: PollInput, cooldown: timedelta
) -> PollResult:
    """One read; while the run is open, a worker gone or restarting is waited for."""
    while True:
        try:
            result: PollResult = await handle.query(
                POLL_QUERY, poll, result_type=PollResult, rpc_timeout=READ_TIMEOUT
            )
            return result
        except RPCError as error:
            if error.status not in TRANSIENT or await _closed(handle):
                raise
        await asyncio.sleep(cooldown.total_seconds())


async def _closed(handle: WorkflowHandle[object, object]) -> bool:
    status = (await handle.describe()).status
    return status not in (None, WorkflowExecutionStatus.RUNNING)
