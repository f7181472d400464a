"""Tenants' day budgets from the client: what each has spent and left, and runs refused.

A run whose tenant has nothing left today, or whose own budget asks for more than is
left, is refused before it starts (exit 4), so nobody waits for a run that could only
stop at its first call; a tenant missing from tenants.toml is a usage error (exit 2).
The check is made by a client interceptor on every start, whatever the command, and
reads the tenant's entity (workflows/tenant_budget.py); the workers check each call
again, since other runs spend meanwhile.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts.loader import CONTRACTS_DIR, ContractError, load_all
from keel.infra.settings import KeelSettings, WorkerSettings
from keel.payloads.llm import Budget

if TYPE_CHECKING:
    from keel.cli.context import Context
from keel.rules.tenants import SPEND_QUERY, Spend, TenantBudget, tenant_day_id

# Entity runs and ingests make no model call: no tenant pays for them.
UNBILLED = frozenset(
    {"IngestWorkflow", "CircuitBreakerWorkflow", "RateLimiterWorkflow", "TenantBudgetWorkflow"}
)
QUERY_TIMEOUT = timedelta(seconds=5)


class BudgetRefused(Exception):
    """The tenant cannot pay for the run: one line, exit 4, no run started."""


class UnknownTenant(ValueError):
    """A tenant tenants.toml does not name: one line, exit 2."""


def tenants() -> dict[str, TenantBudget]:
    """tenants.toml as the workers read it (KEEL_CONTRACTS_DIR, else contracts/)."""
    directory = WorkerSettings().contracts_dir or CONTRACTS_DIR
    try:
        return load_all(directory).tenants
    except ContractError as error:
        raise UnknownTenant(f"invalid contracts: {error}") from None


def today() -> date:
    return datetime.now(UTC).date()


async def spend_of(client: Client, tenant: str, budget: TenantBudget, day: date) -> Spend:
    """The tenant's day as its entity holds it; nothing spent when it has no entity yet."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(tenant_day_id(tenant, day))
    try:
        spend: Spend = await handle.query(SPEND_QUERY, result_type=Spend, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return Spend(tenant=tenant, day=day, budget=budget)
    return spend.model_copy(update={"budget": budget})


def refusal(spend: Spend, run: Budget | None) -> str | None:
    """Why the tenant cannot pay for a run with this budget; None when it can."""
    if spend.exhausted:
        return f"tenant {spend.tenant!r} has spent today's budget ({spend.summary()})"
    if run is None:
        return None
    left_usd, left_tokens = spend.left_usd, spend.left_tokens
    if run.max_cost_usd is not None and left_usd is not None and run.max_cost_usd > left_usd:
        return (
            f"the run may spend ${run.max_cost_usd:g}; tenant {spend.tenant!r} has"
            f" ${left_usd:.4f} left today (lower --budget-cost)"
        )
    if run.max_tokens is not None and left_tokens is not None and run.max_tokens > left_tokens:
        return (
            f"the run may use {run.max_tokens} tokens; tenant {spend.tenant!r} has"
            f" {left_tokens} left today (lower --budget-tokens)"
        )
    return None


async def check_tenant(client: Client, tenant: str, run: Budget | None) -> None:
    """Raise UnknownTenant or BudgetRefused before a run of `tenant` starts."""
    known = tenants()
    if not known:
        return
    budget = known.get(tenant)
    if budget is None:
        raise UnknownTenant(
            f"unknown tenant {tenant!r} (contracts/tenants.toml has {', '.join(sorted(known))})"
        )
    if budget.usd_per_day is None and budget.tokens_per_day is None:
        return
    reason = refusal(await spend_of(client, tenant, budget, today()), run)
    if reason is not None:
        raise BudgetRefused(f"{reason}; it resets at 00:00 UTC")


class _Gate(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, client: Client, tenant: str) -> None:
        super().__init__(next)
        self._client = client
        self._tenant = tenant

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        name = input.workflow if isinstance(input.workflow, str) else str(input.workflow)
        if name not in UNBILLED:
            tenant = input.priority.fairness_key or self._tenant
            run = getattr(input.args[0], "budget", None) if input.args else None
            await check_tenant(self._client, tenant, run if isinstance(run, Budget) else None)
        return await super().start_workflow(input)


class _BudgetGate(Interceptor):
    def __init__(self, tenant: str) -> None:
        self._tenant = tenant
        self.client: Client | None = None

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        assert self.client is not None
        return _Gate(next, self.client, self._tenant)


def budget_gated(client: Client, keel: KeelSettings) -> Client:
    """The same connection, with every start checked against its tenant's budget."""
    gate = _BudgetGate(keel.tenant)
    config = client.config()
    config["interceptors"] = [*config["interceptors"], gate]
    gate.client = client  # its queries go out on the original client
    return Client(**config)


async def cmd_budgets(ctx: Context, args: argparse.Namespace) -> int:
    """`client.py budgets`: each tenant's day, spent and left."""
    day = args.day or today()
    rows = [
        await spend_of(ctx.client, name, budget, day) for name, budget in sorted(tenants().items())
    ]
    if args.json:
        print(json.dumps([_row(s) for s in rows], indent=2, default=str))
        return 0
    header = ("TENANT", "DAY", "USD SPENT", "USD LEFT", "TOKENS SPENT", "TOKENS LEFT", "CALLS")
    table = [header] + [
        tuple(str(v) if v is not None else "-" for v in _row(s).values())[: len(header)]
        for s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _row(spend: Spend) -> dict[str, object]:
    return {
        "tenant": spend.tenant,
        "day": spend.day.isoformat(),
        "usd_spent": round(spend.spent_usd + spend.held_usd, 6),
        "usd_left": spend.left_usd if spend.left_usd is None else round(spend.left_usd, 6),
        "tokens_spent": spend.spent_tokens + spend.held_tokens,
        "tokens_left": spend.left_tokens,
        "calls": spend.calls,
        "refused": spend.refused,
    }


def day_argument(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {text!r} (YYYY-MM-DD)") from None
