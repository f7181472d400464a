"""A run's live channel from workflow code: steps appended, children announced.

Built on the SDK's WorkflowStream, so the channel is offset-addressed, survives a
worker crash (its log is rebuilt on replay) and is carried over continue-as-new
through `state()`. Steps published here are workflow state, not commands: they
add no history events and change nothing for runs recorded before the channel
existed. keel's watchers read by query (keel/cli/channel.py), which records nothing,
so only the model activity's token deltas (signals) add events.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

with workflow.unsafe.imports_passed_through():
    from keel.payloads.live import LIVE_TOPIC, LiveEvent


# Lines a run hands to the next after continue-as-new: a watcher attaching later reads
# from the oldest kept, and a loop of thousands of turns carries a bounded state.
CARRIED_EVENTS = 200


class LiveChannel:
    """One per run; construct it in the workflow's `@workflow.init`."""

    def __init__(self, prior: WorkflowStreamState | None = None) -> None:
        # The SDK requires its stream to be built from a method named __init__.
        self._stream = WorkflowStream(prior)
        self._topic = self._stream.topic(LIVE_TOPIC, type=LiveEvent)

    def node(self, node: str, line: str) -> None:
        """The run entered `node`; `line` is its progress as a terminal shows it."""
        self._topic.publish(LiveEvent(kind="node", node=node, text=line))

    def step(self, text: str, node: str = "") -> None:
        """Something happened inside a node: a search, a re-ask, a fallback, a tool call."""
        self._topic.publish(LiveEvent(kind="step", node=node, text=text))

    def done(self, call: str, node: str, output: str) -> None:
        """A streamed call's accepted output: later deltas of the call are superseded."""
        self._topic.publish(LiveEvent(kind="done", call=call, node=node, text=output))

    def child(self, workflow_id: str, role: str) -> None:
        """A child workflow started; a watcher follows its channel under `role`."""
        self._topic.publish(LiveEvent(kind="child", workflow_id=workflow_id, role=role))

    def state(self) -> WorkflowStreamState:
        """The channel's last lines and publishers, for the next run after continue-as-new."""
        self._stream.detach_pollers()
        snapshot = self._stream.get_state()
        end = snapshot.base_offset + len(snapshot.log)
        if end - CARRIED_EVENTS > snapshot.base_offset:
            self._stream.truncate(end - CARRIED_EVENTS)
            snapshot = self._stream.get_state()
        return snapshot

    def release(self) -> None:
        """Answer waiting subscribers now: the run is ending by failure or cancellation."""
        self._stream.detach_pollers()

    async def close(self) -> None:
        """Release waiting subscribers before the run ends, so no poll is left unanswered.

        A finished run still answers reads of its channel through the SDK's query.
        """
        self._stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
