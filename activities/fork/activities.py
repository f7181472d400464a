"""A forked team's children get their original outcomes from here, through the worker.

A local activity, run only by a team whose run was reset: it reads the run's own
history for the fork's reason and base run, and the original child's history for its
outcomes (activities/fork/history.py). Its result is recorded in the team's history,
so a replay hands the child the same outcomes without reading anything again.
"""

from __future__ import annotations

from temporalio import activity

from activities.fork.history import child_seeds
from keel.payloads.recorded import RecordedCall, SeedsRequest


@activity.defn(name="fork_seeds")
async def fork_seeds(request: SeedsRequest) -> list[RecordedCall]:
    info = activity.info()
    if info.workflow_id is None or info.workflow_run_id is None:
        return []  # not called by a workflow: there is no team to read
    return await child_seeds(
        activity.client(), info.workflow_id, info.workflow_run_id, request.child_workflow_id
    )
