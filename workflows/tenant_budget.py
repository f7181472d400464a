"""TenantBudgetWorkflow: one entity per tenant and UTC day, holding what the tenant spent.

The circuit breaker's pattern (workflows/circuit_breaker.py): every worker reserves and
charges its calls in the same durable entity, so a tenant's runs on any host share one
day's budget with no store beside Temporal. It is started with an execution timeout an
hour after its day (`AFTER_THE_DAY`, keel/rules/tenants.py): the server ends it then, with
no timer in its history, and its spend can still be queried while the namespace keeps
the closed run.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.entity import carry_on

with workflow.unsafe.imports_passed_through():
    from keel.rules.tenants import (
        CHARGE_UPDATE,
        RESERVE_UPDATE,
        SPEND_QUERY,
        TENANT_BUDGET_WORKFLOW,
        Charge,
        Grant,
        Reservation,
        Spend,
        TenantDay,
        TenantDayStart,
    )


@workflow.defn(name=TENANT_BUDGET_WORKFLOW)
class TenantBudgetWorkflow:
    @workflow.init
    def __init__(self, start: TenantDayStart) -> None:
        self._day = start.state or TenantDay(
            spend=Spend(tenant=start.tenant, day=start.day, budget=start.budget)
        )

    @workflow.update(name=RESERVE_UPDATE)
    def reserve(self, reservation: Reservation) -> Grant:
        grant = self._day.reserve(reservation)
        if not grant.granted:
            workflow.logger.warning("tenant budget refused a call: %s", grant.reason)
        return grant

    @workflow.update(name=CHARGE_UPDATE)
    def charge(self, charge: Charge) -> Spend:
        return self._day.charge(charge)

    @workflow.query(name=SPEND_QUERY)
    def spend(self) -> Spend:
        return self._day.spend

    @workflow.run
    async def run(self, start: TenantDayStart) -> None:
        await carry_on(
            lambda: TenantDayStart(
                tenant=start.tenant, day=start.day, budget=self._day.spend.budget, state=self._day
            )
        )
