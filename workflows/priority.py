"""Every activity and child workflow a run schedules carries the run's priority, written down.

The server hands a run's priority to what it schedules when it dispatches a task from a
queue, but the history records only what the command said (nothing), and an activity a
worker takes eagerly (on the run's own queue, handed over with the workflow task) never
passes through that dispatch: its info says no priority, no tenant. Set on the command,
the priority shows on every scheduled event in the Web UI and in every activity's info,
and a retry or a child queues exactly as the run does. It orders nothing differently: a
node that sets its own priority keeps it, field by field.

Replay is unaffected: the SDK does not compare a command's priority with the history's.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import Priority
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)


def inherited(own: Priority, run: Priority) -> Priority:
    """`own` where it says something, else the run's: the server's own rule, field by field."""
    return Priority(
        priority_key=own.priority_key or run.priority_key,
        fairness_key=own.fairness_key or run.fairness_key,
        fairness_weight=own.fairness_weight or run.fairness_weight,
    )


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.priority = inherited(input.priority, workflow.info().priority)
        return super().start_activity(input)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> workflow.ChildWorkflowHandle[Any, Any]:
        input.priority = inherited(input.priority, workflow.info().priority)
        return await super().start_child_workflow(input)


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class InheritPriority(Interceptor):
    """The worker's interceptor: every workflow's activities and children inherit its priority."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound
