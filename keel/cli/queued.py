"""Whether a run is waiting for a free model slot: what a watcher tells while it waits."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.enums.v1 import PendingActivityState

from keel.cli.context import Context

MODEL_ACTIVITY = "complete_llm"  # LLMActivities.complete's activity name


async def waiting_for_model(ctx: Context, workflow_id: str) -> bool:
    """The run's model call is scheduled but no model slot has taken it yet."""
    description = await ctx.client.get_workflow_handle(workflow_id).describe()
    now = datetime.now(UTC).timestamp()
    for pending in description.raw_description.pending_activities:
        retry_at = pending.next_attempt_schedule_time.ToSeconds()
        if (
            pending.activity_type.name == MODEL_ACTIVITY
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            and (not retry_at or retry_at <= now)  # not a retry's backoff
        ):
            return True
    return False
