"""Asking a model's breaker before a call and telling it how the call went."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from keel.payloads.errors import PROVIDER_RATE_LIMITED, PROVIDER_UNAVAILABLE
from keel.payloads.llm import Provider
from keel.rules.breaker import (
    ACQUIRE_UPDATE,
    BREAKER_WORKFLOW,
    RECORD_UPDATE,
    BreakerConfig,
    BreakerStart,
    BreakerState,
    CallOutcome,
    Permission,
    breaker_id,
)

log = structlog.get_logger()

# What counts against a provider: it did not answer. A bad request, a schema
# violation or a refused key are answers, and say nothing about its health.
BREAKER_FAILURES = frozenset({PROVIDER_UNAVAILABLE, PROVIDER_RATE_LIMITED})
GUARDED_PROVIDERS: frozenset[Provider] = frozenset({"openai", "anthropic"})


# A breaker that cannot be reached must not stall model calls: fail open, and say so.
BREAKER_RPC_TIMEOUT = timedelta(seconds=10)
_UNREACHABLE = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError)


class Breakers:
    def __init__(self, scope: str, task_queue: str, config: BreakerConfig) -> None:
        self._scope = scope
        self._task_queue = task_queue
        self._config = config

    def guards(self, provider: Provider) -> bool:
        return provider in GUARDED_PROVIDERS

    async def acquire(self, name: str) -> Permission:
        workflow_id = breaker_id(self._scope, name)
        # The entity workflow is called by its recorded names (keel/rules/breaker.py), so
        # this activity module does not import the workflow module.
        start: WithStartWorkflowOperation[None, None] = WithStartWorkflowOperation(
            BREAKER_WORKFLOW,
            BreakerStart(name=name, config=self._config),
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            permission: Permission = await activity.client().execute_update_with_start_workflow(
                ACQUIRE_UPDATE,
                start_workflow_operation=start,
                rpc_timeout=BREAKER_RPC_TIMEOUT,
                result_type=Permission,
            )
        except _UNREACHABLE as error:
            log.warning("breaker.unreachable", breaker=name, error=str(error))
            return Permission(allowed=True, state="closed", reason="breaker unreachable")
        if not permission.allowed:
            log.warning("breaker.refused", breaker=name, state=permission.state)
            activity.metric_meter().create_counter(
                "keel_breaker_refusals", "calls refused by an open breaker"
            ).add(1, {"breaker": name})
        return permission

    async def record(
        self, name: str, failed: bool, before: str, count: int = 1
    ) -> BreakerState | None:
        """Tell the breaker how the call went; None when it could not be told.

        Never fails the call: the provider has answered (and been paid), so a retry
        caused by the breaker would pay it again. One missed outcome only makes the
        breaker's window a call shorter.
        """
        handle = activity.client().get_workflow_handle(breaker_id(self._scope, name))
        try:
            state: BreakerState = await handle.execute_update(
                RECORD_UPDATE,
                CallOutcome(failed=failed, count=count),
                rpc_timeout=BREAKER_RPC_TIMEOUT,
                result_type=BreakerState,
            )
        except _UNREACHABLE as error:
            log.warning("breaker.unrecorded", breaker=name, failed=failed, error=str(error))
            return None
        if state.state != before:
            log.warning("breaker.transition", breaker=name, from_state=before, to_state=state.state)
            activity.metric_meter().create_counter(
                "keel_breaker_transitions", "breaker state changes"
            ).add(1, {"breaker": name, "to": state.state})
        return state
