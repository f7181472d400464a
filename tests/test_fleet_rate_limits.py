"""Four worker.py processes share one provider's rate limit, and one provider's Retry-After.

The provider is a real HTTP server (harness/testing/limited_endpoint.py) that refuses with 429
whatever goes over its requests-per-window limit, and counts it; the contracts declare
the same limit. Every call is an agent's one model call, on whichever worker takes it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import is_cancelled_exception

from activities.contracts.loader import CONTRACTS_DIR
from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.prompts import PromptBook
from activities.llm.rate_limits import RateLimits
from harness.testing.limited_endpoint import LimitedEndpoint
from harness.testing.processes import worker_process
from harness.testing.stack import new_id, running_workers, worker_settings
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentInput
from keel.payloads.llm import ModelChoice
from keel.rules.rate_limit import LEDGER_QUERY, Ledger, RateLimit, rate_limiter_id
from workflows.agent import AgentWorkflow

WORKERS = 4
# The provider's limit, and the contract's: 120 a minute, counted over any 10 s.
LIMIT, WINDOW = 20, 10.0
LIMITS_TOML = f"""version = "test"
[limits."openai/gpt-5-mini"]
requests_per_minute = {int(LIMIT * 60 / WINDOW)}
window_seconds = {WINDOW}
margin_seconds = 1.5

[limits."openai/gpt-5"]
requests_per_minute = 600
"""


@dataclass
class Fleet:
    settings: WorkerSettings
    endpoint: LimitedEndpoint
    logs: list[Path]

    def calls_by_worker(self) -> list[int]:
        return [log.read_text().count('"llm.complete"') for log in self.logs]


@pytest.fixture(scope="module")
async def fleet(
    client: Client, server_address: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    contracts = root / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / "limits.toml").write_text(LIMITS_TOML)
    settings = worker_settings()
    with LimitedEndpoint(LIMIT, WINDOW) as endpoint:
        async with AsyncExitStack() as stack:
            for number in range(WORKERS):
                data = root / f"worker-{number}"
                data.mkdir()
                await stack.enter_async_context(
                    worker_process(
                        server_address,
                        settings,
                        data,
                        extra_args=(
                            "--contracts-dir",
                            str(contracts),
                            "--openai-base-url",
                            endpoint.base_url,
                            "--llm-concurrency",
                            "8",
                        ),
                        log_file=root / f"worker-{number}.log",
                    )
                )
            yield Fleet(settings, endpoint, [root / f"worker-{n}.log" for n in range(WORKERS)])


async def answer(client: Client, settings: WorkerSettings, model: str, task: str) -> str:
    """One agent, one model call on `openai/<model>`; its answer."""
    result = await client.execute_workflow(
        AgentWorkflow.run,
        AgentInput(
            agent="responder",
            task=task,
            variables={"request": task},
            models=[ModelChoice(provider="openai", model=model)],
            llm_task_queue=settings.llm_task_queue,
        ),
        id=new_id("limited"),
        task_queue=settings.task_queue,
    )
    assert result.output is not None, result.flags
    return str(result.output["answer"])


async def test_four_workers_together_stay_under_the_providers_limit(
    client: Client, fleet: Fleet
) -> None:
    # Warm: every worker has run an agent, so none takes its first task in the burst.
    await asyncio.gather(*(answer(client, fleet.settings, "gpt-5", f"warm {n}") for n in range(8)))
    await asyncio.sleep(WINDOW)
    warm = fleet.endpoint.stats()["served"]
    calls = 3 * LIMIT
    answers = await asyncio.gather(
        *(answer(client, fleet.settings, "gpt-5-mini", f"why back off {n}?") for n in range(calls))
    )
    assert len(answers) == calls
    stats = fleet.endpoint.stats()
    served = sorted(stats["served_at"])[warm:]
    span = served[-1] - served[0]
    # After the first window's burst, which the limit allows, the steady rate.
    rate = (len(served) - LIMIT) / span * 60 if span else 0.0
    # The report: refused by the provider, and the throughput against its limit.
    assert stats["refused"] == 0, (
        f"the provider refused {stats['refused']} of {calls} calls from {WORKERS} workers"
        f" at {[round(t - served[0], 2) for t in stats['refused_at']]}"
        f" (served at {[round(t - served[0], 2) for t in served]}; steady {rate:.0f}/min"
        f" of {LIMIT * 60 / WINDOW:.0f}/min)"
    )
    assert stats["served"] == warm + calls
    assert sum(1 for n in fleet.calls_by_worker() if n) >= 2, fleet.calls_by_worker()
    # No rolling window ever held more than the limit, as the provider counted.
    for i in range(len(served) - LIMIT):
        assert served[i + LIMIT] - served[i] > WINDOW
    ledger: Ledger = await client.get_workflow_handle(
        rate_limiter_id(fleet.settings.task_queue, "openai/gpt-5-mini")
    ).query(LEDGER_QUERY, result_type=Ledger)
    assert ledger.booked >= calls  # a retried attempt books again
    assert ledger.waited_seconds > 0  # the calls did queue: the limit was reached


async def test_a_retry_after_seen_by_one_worker_holds_back_every_worker(
    client: Client, fleet: Fleet
) -> None:
    await asyncio.sleep(WINDOW + 2)  # the provider's window and the ledger are empty again
    pause = 3.0
    fleet.endpoint.refuse_next(retry_after=pause)
    first = asyncio.ensure_future(answer(client, fleet.settings, "gpt-5", "first"))
    for _ in range(600):  # until the 429 is sent
        if fleet.endpoint.stats()["forced"]:
            break
        await asyncio.sleep(0.05)
    # Started after the 429, on any worker: none may call before the pause is over.
    others = [answer(client, fleet.settings, "gpt-5", f"next {n}") for n in range(8)]
    await asyncio.gather(first, *others)
    stats = fleet.endpoint.stats()
    told_at = stats["forced_at"][0]
    after = [t for t in stats["served_at"] if t > told_at]
    assert len(after) == 9
    early = [round(t - told_at, 2) for t in after if t - told_at < pause - 0.2]
    assert not early, f"calls sent {early} s after a Retry-After of {pause} s"
    assert stats["refused"] == 0


async def test_a_call_waiting_for_its_slot_heartbeats_and_a_cancel_gives_the_slot_back(
    client: Client, store: DocumentStore
) -> None:
    limits = {"openai/gpt-5-mini": RateLimit(requests_per_minute=1)}
    with LimitedEndpoint(LIMIT, WINDOW) as endpoint:
        settings = worker_settings(openai_base_url=endpoint.base_url)
        scope = settings.task_queue
        gateway = build_gateway(
            settings,
            PromptBook.load(),
            passages=store,
            gates=[RateLimits(scope, settings.task_queue, lambda: limits)],
        )
        async with running_workers(client, store, settings, gateway=gateway):
            await answer(client, settings, "gpt-5-mini", "takes the minute's one slot")
            waiting = await client.start_workflow(
                AgentWorkflow.run,
                AgentInput(
                    agent="responder",
                    task="waits a minute",
                    variables={"request": "waits a minute"},
                    models=[ModelChoice(provider="openai", model="gpt-5-mini")],
                    llm_task_queue=settings.llm_task_queue,
                ),
                id=new_id("waiting"),
                task_queue=settings.task_queue,
            )
            limiter = client.get_workflow_handle(rate_limiter_id(scope, "openai/gpt-5-mini"))
            beats = await heartbeats_while_waiting(waiting, seconds=4)
            booked = await limiter.query(LEDGER_QUERY, result_type=Ledger)
            await waiting.cancel()
            with pytest.raises(WorkflowFailureError) as failed:
                await asyncio.wait_for(waiting.result(), 10)
            for _ in range(50):  # the slot is given back as the cancel lands
                after = await limiter.query(LEDGER_QUERY, result_type=Ledger)
                if len(after.entries) < 2:
                    break
                await asyncio.sleep(0.1)
        served = endpoint.stats()["served"]
    assert beats >= 2, "the call sent no heartbeats while it waited for its slot"
    assert len(booked.entries) == 2
    assert is_cancelled_exception(failed.value.cause)
    assert len(after.entries) == 1  # its slot was given back
    assert served == 1


async def heartbeats_while_waiting(handle: WorkflowHandle[Any, Any], seconds: float) -> int:
    """How many different heartbeat times the run's model call showed over `seconds`."""
    seen: set[object] = set()
    for _ in range(int(seconds / 0.5)):
        await asyncio.sleep(0.5)
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == "complete_llm" and pending.HasField(
                "last_heartbeat_time"
            ):
                seen.add(pending.last_heartbeat_time.ToDatetime())
    return len(seen)
