"""A model call's output, published to the calling run's live channel as it is written.

Deltas are gathered here and handed to the SDK's WorkflowStreamClient as one event per
batch, each sent as a signal: every signal wakes the workflow for a task and, with a
watcher, for one more to take its next poll, so batches are cut by time, not by
token. The first batch goes `FIRST_SECONDS` after the first piece was written (the
answer's opening words are on a watcher's terminal well within a second), then what
accumulated every `BATCH_SECONDS`. A call that answers before its first batch is due
sends nothing: the workflow publishes the whole output with the result (no signal,
and no workflow task racing the next step), and text not yet sent when the call
answers is dropped for the same reason. Only calls whose output has a field a
watcher shows as it grows (`SHOWN_FIELDS`: a draft's answer, a researcher's summary)
stream at all; a plan's queries or a review's scores arrive as step lines.

A retried attempt or a re-ask first publishes a reset, so a watcher drops the partial
text of the attempt before. Publishing is a side channel: the model call never waits
for a signal to be acknowledged, and a failure to publish is logged and never fails
the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from types import TracebackType

import structlog
from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from keel.payloads.live import LIVE_TOPIC, LiveEvent, shown_as_written

log = structlog.get_logger()

FIRST_SECONDS = 0.25
BATCH_SECONDS = 0.5
CLOSE_SECONDS = 3.0
# Batches are cut here and flushed at once; the SDK client's own timer only backs that up.
_CLIENT_INTERVAL = timedelta(seconds=30)

# Publishers closing after their call answered; held so the tasks are not collected.
_closing: set[asyncio.Task[None]] = set()


class TokenPublisher:
    """`write(text)` may be called from any thread (llama.cpp runs on one of its own)."""

    def __init__(self, call: str, node: str, reset_reason: str = "") -> None:
        self._call = call
        self._node = node
        self._reset_reason = reset_reason
        self._client = WorkflowStreamClient.from_within_activity(batch_interval=_CLIENT_INTERVAL)
        self._topic = self._client.topic(LIVE_TOPIC, type=LiveEvent)
        self._loop = asyncio.get_running_loop()
        self._pending = ""
        self._written = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TokenPublisher:
        await self._client.__aenter__()
        if self._reset_reason:
            self._send(LiveEvent(kind="reset", call=self._call, node=self._node,
                                 text=self._reset_reason))  # fmt: skip
        self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        # Text not yet sent is void either way: an answer arrives whole with the
        # workflow's `done`, and a failed attempt's is reset by the retry or re-ask.
        self._pending = ""
        if kind is None:
            # A batch in flight finishes after the activity has completed.
            task = asyncio.ensure_future(self._close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
            return
        # Failed: a batch in flight lands before the failure is reported, so a retry's
        # reset follows it. Nothing new is sent.
        await self._close()

    def write(self, text: str) -> None:
        if text:
            self._loop.call_soon_threadsafe(self._add, text)

    def _add(self, text: str) -> None:
        self._pending += text
        self._written.set()

    async def _tick(self) -> None:
        await self._written.wait()
        await asyncio.sleep(FIRST_SECONDS)
        while True:
            self._cut()
            await asyncio.sleep(BATCH_SECONDS)

    def _cut(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._send(LiveEvent(kind="tokens", call=self._call, node=self._node, text=text))

    def _send(self, event: LiveEvent) -> None:
        self._topic.publish(event, force_flush=True)

    async def _close(self) -> None:
        try:
            # Flush before stopping the SDK's flusher: stopping it while its signal is in
            # flight would cancel the request and send the batch again.
            await asyncio.wait_for(self._client.flush(), CLOSE_SECONDS)
            await asyncio.wait_for(self._client.__aexit__(None, None, None), CLOSE_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as failure:  # a side channel: the call's own outcome stands
            log.warning("live.publish_failed", call=self._call, error=str(failure)[:200])


def reset_reason(reask_error: str | None) -> str:
    """Why this attempt's output replaces an earlier one, or "" for a first attempt."""
    attempt = activity.info().attempt
    if attempt > 1:
        return f"retry (attempt {attempt})"
    if reask_error:
        return f"re-ask: {reask_error}"[:200]
    return ""


def streams(stream_call: str, output_schema: str) -> bool:
    """Whether a call publishes its output as written: the run asked, and a watcher shows it."""
    return bool(stream_call) and shown_as_written(output_schema)
