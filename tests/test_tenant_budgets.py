"""A tenant's day budget holds across its runs: a run stops at the call it cannot pay for,
flagged, with what it did; a tenant with nothing left is refused before its run starts.

The tenant is the run's fairness key (`client.py --tenant`, KEEL_TENANT), read by the
model-call activity from the priority the run hands its activities.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import Priority, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from activities.contracts.loader import CONTRACTS_DIR
from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.gates import GatedCall
from activities.llm.prompts import PromptBook
from activities.llm.tenant_budgets import TenantBudgets
from harness.testing.cli import cli_env
from harness.testing.processes import run_script
from harness.testing.stack import QUESTION, new_id, running_workers, scripted_input, worker_settings
from keel.cli.budgets import today
from keel.infra.settings import WorkerSettings
from keel.payloads.llm import Usage
from keel.payloads.research import ResearchReport
from keel.rules.tenants import (
    CHARGE_UPDATE,
    RESERVE_UPDATE,
    SPEND_QUERY,
    TENANT_BUDGET_WORKFLOW,
    Charge,
    Reservation,
    Spend,
    TenantBudget,
    TenantDayStart,
    tenant_day_id,
)
from workflows.research import ResearchWorkflow

SCRIPT = "refine_and_revise"


class Recorder:
    """A gate that only writes down each call's estimate and what it used."""

    def __init__(self) -> None:
        self.calls: list[tuple[GatedCall, Usage | None]] = []

    async def admit(self, call: GatedCall) -> GatedCall:
        return call

    async def settle(
        self, call: GatedCall, usage: Usage | None, error: ApplicationError | None
    ) -> None:
        self.calls.append((call, usage))


async def research(client: Client, settings: WorkerSettings, tenant: str) -> ResearchReport:
    return await client.execute_workflow(
        ResearchWorkflow.run,
        scripted_input(SCRIPT, settings, QUESTION, max_revisions=0),
        id=new_id("tenant"),
        task_queue=settings.task_queue,
        priority=Priority(fairness_key=tenant),
    )


async def spend(client: Client, tenant: str) -> Spend:
    handle = client.get_workflow_handle(tenant_day_id(tenant, today()))
    result: Spend = await handle.query(SPEND_QUERY, result_type=Spend)
    return result


async def spend_all(
    client: Client, settings: WorkerSettings, tenant: str, budget: TenantBudget
) -> None:
    """Spend a tenant's whole day, as its other runs would have."""
    assert budget.tokens_per_day is not None
    handle = await client.start_workflow(
        TENANT_BUDGET_WORKFLOW,
        TenantDayStart(tenant=tenant, day=today(), budget=budget),
        id=tenant_day_id(tenant, today()),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    whole = budget.tokens_per_day - 10
    reservation = Reservation(
        id="elsewhere", budget=budget, prompt_tokens=10, max_output_tokens=whole,
        min_output_tokens=16, usd_per_input_token=0, usd_per_output_token=0,
    )  # fmt: skip
    await handle.execute_update(RESERVE_UPDATE, reservation)
    await handle.execute_update(CHARGE_UPDATE, Charge(id="elsewhere", tokens=budget.tokens_per_day))


def tenant_contracts(tmp_path: Path, tenants: str) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    (folder / "tenants.toml").write_text(tenants)
    return folder


async def test_a_run_stops_at_the_call_its_tenant_cannot_pay_for_flagged_with_what_it_did(
    client: Client, store: DocumentStore
) -> None:
    settings = worker_settings()
    tenants = {"default": TenantBudget()}
    recorder = Recorder()
    gateway = build_gateway(
        settings,
        PromptBook.load(),
        passages=store,
        gates=[recorder, TenantBudgets(settings.task_queue, lambda: tenants)],
    )
    async with running_workers(client, store, settings, gateway=gateway):
        # A run of a tenant without limits: what each of its calls is estimated and uses.
        whole = await research(client, settings, "default")
        assert whole.usage.calls >= 2
        (plan, plan_usage), (second, _) = recorder.calls[0], recorder.calls[1]
        assert plan_usage is not None
        # Enough for the plan call, and after it too little for the next one.
        left = plan.prompt_tokens + 40
        assert left - plan_usage.tokens < second.prompt_tokens + 16
        tenants["acme"] = TenantBudget(tokens_per_day=left)
        report = await research(client, settings, "acme")
        day = await spend(client, "acme")
    assert "budget_exhausted" in report.flags
    assert "tenant_budget_exhausted" in report.flags
    assert report.usage.calls == 1  # the plan, kept; then the call it could not pay for
    assert (day.spent_tokens, day.held_tokens, day.calls) == (report.usage.tokens, 0, 1)
    assert day.refused == 1


async def test_a_spent_or_unknown_tenant_is_refused_before_its_run_and_budgets_shows_each(
    client: Client, store: DocumentStore, tmp_path: Path, server_address: str
) -> None:
    broke = TenantBudget(tokens_per_day=1000)
    folder = tenant_contracts(
        tmp_path,
        "[tenants.default]\n[tenants.broke]\ntokens_per_day = 1000\n"
        "[tenants.spare]\nusd_per_day = 2.0\n",
    )
    settings = worker_settings()
    env = {
        "TEMPORAL_ADDRESS": server_address,
        **cli_env(settings),
        "KEEL_CONTRACTS_DIR": str(folder),
    }
    start = ["research", QUESTION, "--provider", "scripted", "--model", SCRIPT]
    async with running_workers(client, store, settings):
        await spend_all(client, settings, "broke", broke)
        spent = await run_script("client.py", *start, env={**env, "KEEL_TENANT": "broke"})
        unknown = await run_script("client.py", *start, env={**env, "KEEL_TENANT": "nobody"})
        too_big = await run_script(
            "client.py", *start, "--budget-cost", "5", env={**env, "KEEL_TENANT": "spare"}
        )
        shown = await run_script("client.py", "budgets", "--json", env=env)
        table = await run_script("client.py", "budgets", env=env)
    assert spent.code == 4, spent.stderr
    assert spent.stderr.strip() == (
        "refused: tenant 'broke' has spent today's budget (1000 of 1000 tokens);"
        " it resets at 00:00 UTC"
    )
    assert unknown.code == 2, unknown.stderr
    assert unknown.stderr.strip() == (
        "error: unknown tenant 'nobody' (contracts/tenants.toml has broke, default, spare)"
    )
    assert too_big.code == 4, too_big.stderr
    assert "the run may spend $5; tenant 'spare' has $2.0000 left today" in too_big.stderr
    rows = {row["tenant"]: row for row in json.loads(shown.stdout)}
    assert set(rows) == {"broke", "default", "spare"}
    assert (rows["broke"]["tokens_spent"], rows["broke"]["tokens_left"]) == (1000, 0)
    assert (rows["spare"]["usd_spent"], rows["spare"]["usd_left"]) == (0.0, 2.0)
    assert rows["default"]["tokens_left"] is None
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "TENANT", "DAY", "USD", "SPENT", "USD", "LEFT", "TOKENS", "SPENT", "TOKENS", "LEFT", "CALLS"
    ]  # fmt: skip
    assert lines[1].split() == ["broke", today().isoformat(), "0.0", "-", "1000", "0", "1"]


async def test_a_run_of_a_tenant_the_contracts_do_not_name_fails_at_its_first_call(
    client: Client, store: DocumentStore
) -> None:
    """Started elsewhere than the CLI (a schedule, another client): refused in one line."""
    settings = worker_settings()
    tenants = {"default": TenantBudget(), "acme": TenantBudget(tokens_per_day=10_000)}
    gateway = build_gateway(
        settings,
        PromptBook.load(),
        passages=store,
        gates=[TenantBudgets(settings.task_queue, lambda: tenants)],
    )
    async with running_workers(client, store, settings, gateway=gateway):
        with pytest.raises(WorkflowFailureError) as failed:
            await research(client, settings, "nobody")
    cause: BaseException | None = failed.value.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    assert isinstance(cause, ApplicationError)
    assert cause.type == "UnknownTenant"
    assert cause.message == "unknown tenant 'nobody' (tenants.toml has acme, default)"
