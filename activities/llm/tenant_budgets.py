"""A tenant's daily budget, held across all its runs and workers: reserve, call, charge.

Before a call is sent, it reserves in its tenant's entity for the UTC day
(keel/rules/tenants.py) the most it may cost, and is sent with no more answer tokens than
the tenant can pay for; when nothing fits it is refused (BudgetExhausted, tenant's),
and the run stops at that call through its budget path, flagged, with what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import structlog
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.entity_calls import until_answered
from activities.llm.gates import GatedCall
from keel.payloads.errors import TENANT_BUDGET_EXHAUSTED, UNKNOWN_TENANT
from keel.payloads.llm import Usage
from keel.rules.tenants import (
    CHARGE_UPDATE,
    RESERVE_UPDATE,
    TENANT_BUDGET_WORKFLOW,
    Charge,
    Grant,
    Reservation,
    TenantBudget,
    TenantDayStart,
    day_entity_timeout,
    tenant_day_id,
)

log = structlog.get_logger()

BUDGET_RPC_TIMEOUT = timedelta(seconds=10)
CHARGE_DEADLINE_SECONDS = 30.0  # then the hold stays counted in full
MIN_OUTPUT_TOKENS = 16  # as the gateway's own: below this no schema answer fits


class TenantBudgets:
    """The gate of every call of a tenant with a budget; its days' entities on `task_queue`."""

    def __init__(self, task_queue: str, tenants: Callable[[], dict[str, TenantBudget]]) -> None:
        self._task_queue = task_queue
        self._tenants = tenants

    def _budget(self, tenant: str) -> TenantBudget | None:
        tenants = self._tenants()
        if not tenants:
            return None  # no tenants.toml: no budgets
        budget = tenants.get(tenant)
        if budget is None:
            raise ApplicationError(
                f"unknown tenant {tenant!r} (tenants.toml has {', '.join(sorted(tenants))})",
                type=UNKNOWN_TENANT,
                non_retryable=True,
            )
        if budget.usd_per_day is None and budget.tokens_per_day is None:
            return None
        return budget

    async def admit(self, call: GatedCall) -> GatedCall:
        budget = self._budget(call.tenant)
        if budget is None:
            return call
        grant = await self._reserve(call, budget)
        return call.capped(grant.output_tokens)

    async def settle(
        self, call: GatedCall, usage: Usage | None, error: ApplicationError | None
    ) -> None:
        if self._budget(call.tenant) is None:
            return
        charge = Charge(
            id=call.call_id,
            tokens=usage.tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
        )
        handle = activity.client().get_workflow_handle(tenant_day_id(call.tenant, _today()))
        try:
            await until_answered(
                lambda: handle.execute_update(
                    CHARGE_UPDATE, charge, rpc_timeout=BUDGET_RPC_TIMEOUT
                ),
                f"budget of {call.tenant}",
                CHARGE_DEADLINE_SECONDS,
            )
        except (RPCError, TimeoutError) as failure:
            # The hold stays counted in full: the tenant is never charged less than it spent.
            log.warning("tenant_budget.uncharged", tenant=call.tenant, error=str(failure))

    async def _reserve(self, call: GatedCall, budget: TenantBudget) -> Grant:
        """The hold for the call's most cost, or the refusal when nothing fits."""
        day = _today()
        reservation = Reservation(
            id=call.call_id,
            budget=budget,
            prompt_tokens=call.prompt_tokens,
            max_output_tokens=call.max_tokens,
            min_output_tokens=MIN_OUTPUT_TOKENS,
            usd_per_input_token=call.price.input / 1_000_000,
            usd_per_output_token=call.price.output / 1_000_000,
        )
        # Unlike a breaker, a budget is a promise: no call goes out unaccounted, so a
        # budget that cannot be reached holds the call back (it waits, heartbeating).
        grant: Grant = await until_answered(
            lambda: activity.client().execute_update_with_start_workflow(
                RESERVE_UPDATE,
                reservation,
                start_workflow_operation=self._start(call.tenant, budget, day),
                rpc_timeout=BUDGET_RPC_TIMEOUT,
                result_type=Grant,
            ),
            f"budget of {call.tenant}",
        )
        if not grant.granted:
            raise ApplicationError(
                f"{grant.reason} today; it resets at 00:00 UTC",
                type=TENANT_BUDGET_EXHAUSTED,
                non_retryable=True,
            )
        return grant

    def _start(
        self, tenant: str, budget: TenantBudget, day: date
    ) -> WithStartWorkflowOperation[None, None]:
        """The day's entity, should it not run yet: one per attempt (it cannot be reused)."""
        return WithStartWorkflowOperation(
            TENANT_BUDGET_WORKFLOW,
            TenantDayStart(tenant=tenant, day=day, budget=budget),
            id=tenant_day_id(tenant, day),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            execution_timeout=day_entity_timeout(day, datetime.now(UTC)),
        )


def _today() -> date:
    return datetime.now(UTC).date()
