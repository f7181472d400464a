"""A model call's output, published to the calling run's live channel as it is written.

Deltas are buffered and sent by the SDK's WorkflowStreamClient as batched signals:
the first one at once (a watcher sees the answer start within a round trip), the
rest every `BATCH_SECONDS`. A retried attempt or a re-ask first publishes a reset,
so a watcher drops the partial text of the attempt before. Publishing is a side
channel: a failure to publish is logged and never fails or delays the model call.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from types import TracebackType

import structlog
from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from models.live import LIVE_TOPIC, LiveEvent

log = structlog.get_logger()

BATCH_SECONDS = 0.3
CLOSE_SECONDS = 3.0


class TokenPublisher:
    """`write(text)` may be called from any thread (llama.cpp runs on one of its own)."""

    def __init__(self, call: str, node: str, reset_reason: str = "") -> None:
        self._call = call
        self._node = node
        self._reset_reason = reset_reason
        self._client = WorkflowStreamClient.from_within_activity(
            batch_interval=timedelta(seconds=BATCH_SECONDS)
        )
        self._topic = self._client.topic(LIVE_TOPIC, type=LiveEvent)
        self._loop = asyncio.get_running_loop()
        self._first = True
        self._lock = threading.Lock()

    async def __aenter__(self) -> TokenPublisher:
        await self._client.__aenter__()
        if self._reset_reason:
            self._publish(LiveEvent(kind="reset", call=self._call, node=self._node,
                                    text=self._reset_reason), flush=True)  # fmt: skip
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            await asyncio.wait_for(self._client.__aexit__(None, None, None), CLOSE_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as failure:  # a side channel: the call's own outcome stands
            log.warning("live.publish_failed", call=self._call, error=str(failure)[:200])

    def write(self, text: str) -> None:
        if not text:
            return
        event = LiveEvent(kind="tokens", call=self._call, node=self._node, text=text)
        with self._lock:
            first, self._first = self._first, False
        self._loop.call_soon_threadsafe(self._publish, event, first)

    def _publish(self, event: LiveEvent, flush: bool) -> None:
        self._topic.publish(event, force_flush=flush)


def reset_reason(reask_error: str | None) -> str:
    """Why this attempt's output replaces an earlier one, or "" for a first attempt."""
    attempt = activity.info().attempt
    if attempt > 1:
        return f"retry (attempt {attempt})"
    if reask_error:
        return f"re-ask: {reask_error}"[:200]
    return ""
