"""One suite run: the shared processes, the fault-free references, and each seed.

The Temporal dev server (persisted to SQLite), the ticket service and the scripted
model endpoint live for the whole suite run; each seed gets workers of its own on
task queues of its own, so a seed starts clean and `--seed N` alone replays it.
References (one fault-free run per workload variant) run on their own queues
before the first seed that needs them, never while faults are armed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from activities.documents.store import DocumentStore
from harness.chaos.faults import Fired, SeedContext, arm_model_faults, fire
from harness.chaos.histories import read_histories
from harness.chaos.invariants import Check, RunFacts, check_seed
from harness.chaos.ledger import Ledger
from harness.chaos.model_endpoint import ScriptedEndpoint
from harness.chaos.plan import Fault, SeedPlan, Workload
from harness.chaos.processes import (
    ROOT,
    DevServer,
    TicketServiceProcess,
    WorkerConfig,
    WorkerProcess,
    free_port,
)
from harness.chaos.runs import (
    Queues,
    RunRecord,
    cancel_run,
    collect_result,
    drive_decision,
    start_run,
    terminate,
    wait_closed,
    workflow_id_for,
)
from keel.infra.codec import data_converter
from keel.infra.keys import DEFAULT_KEY_FILE, CodecSettings, ensure_key_file

CORPORA = ("demo", "demo-v1", "demo-ko", "postmortems")
# A fault-free run's allowance, by workload, on a busy 2-core machine.
BASE_SECONDS = {"saga": 30.0, "research": 30.0, "team": 60.0}


@dataclass(frozen=True)
class SuiteSettings:
    data_dir: Path | None = None  # default: a fresh folder under .data/chaos
    keep: bool = False
    provider_timeout_seconds: float = 15.0
    # What a crash or an outage may add: the heartbeat timeout, a worker's start, 5 s.
    recovery_seconds: float = 25.0
    # How long past its bound a run is awaited (then cancelled, then terminated).
    grace_seconds: float = 60.0


@dataclass
class SeedResult:
    plan: SeedPlan
    fired: list[Fired]
    runs: list[RunRecord]
    bounds: dict[str, float]
    checks: dict[str, Check]
    seconds: float
    data_dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status != "FAIL" for c in self.checks.values())


def run_bound(plan: SeedPlan, workload: Workload, settings: SuiteSettings) -> float:
    """Seconds a run may take: its allowance plus what every fault of the seed may add.

    Runs of a seed share one model slot, so any fault may delay any of them.
    """
    bound = BASE_SECONDS[workload.kind]
    for fault in plan.faults:
        bound += fault_cost(fault, settings)
    return bound


def fault_cost(fault: Fault, settings: SuiteSettings) -> float:
    cost = fault.hold_seconds + (fault.hold_ms + fault.after_commit_ms) / 1000
    if fault.model_fault == "hang":
        cost += settings.provider_timeout_seconds + 5
    if fault.kind in ("kill_worker", "restart_server"):
        cost += fault.down_seconds + settings.recovery_seconds
    return cost + 5


def _own_payload_key(path: Path) -> None:
    """Without the user's keys (or the default key file), a key of the suite's own.

    The client and every worker process (which inherit the environment) then encrypt
    with it; histories of a run stay readable through the suite's client alone.
    """
    settings = CodecSettings()
    if not settings.enabled or settings.configured() or DEFAULT_KEY_FILE.exists():
        return
    ensure_key_file(path)
    os.environ["KEEL_CODEC_KEY_FILE"] = str(path)


class Suite:
    def __init__(self, settings: SuiteSettings) -> None:
        self.settings = settings
        base = settings.data_dir or ROOT / ".data" / "chaos"
        base.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        self.nonce = uuid.uuid4().hex[:6]
        self.endpoint = ScriptedEndpoint()
        self.tickets = TicketServiceProcess(
            self.data_dir / "tickets.db", self.data_dir / "tickets.log"
        )
        self.ledger = Ledger(self.tickets.db_path)
        self.server = DevServer(self.data_dir / "server")
        _own_payload_key(self.data_dir / "codec.keys")
        self._client: Client | None = None
        self._references: dict[str, dict[str, Any]] = {}
        self._reference_worker: WorkerProcess | None = None
        self.failed_seeds = 0

    @property
    def client(self) -> Client:
        assert self._client is not None, "the suite is not started"
        return self._client

    async def __aenter__(self) -> Suite:
        store = DocumentStore(self.data_dir / "documents.db")
        for corpus in CORPORA:
            await asyncio.to_thread(store.ingest_folder, ROOT / "corpus" / corpus, corpus)
        await self.endpoint.start(free_port())
        await self.tickets.start()
        await self.server.start()
        # The suite stops the server on purpose: the client's retry warnings are noise.
        quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
        self._client = await Client.connect(
            self.server.address,
            data_converter=data_converter(),
            runtime=Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet))),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stops every process; the data folder stays when asked, or when anything failed."""
        raised = exc_info[1] is not None  # (type, value, traceback): was there an error?
        if self._reference_worker is not None:
            await self._reference_worker.stop()
        # The client goes while the loop still runs: a live one can crash interpreter exit.
        self._client = None
        gc.collect()
        await self.server.stop()
        await self.tickets.stop()
        await self.endpoint.stop()
        if not self.settings.keep and not self.failed_seeds and not raised:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def worker_config(self, queues: Queues, log_dir: Path) -> WorkerConfig:
        return WorkerConfig(
            address=self.server.address,
            task_queue=queues.task_queue,
            llm_task_queue=queues.llm_task_queue,
            tickets_url=self.tickets.url,
            tickets_token=self.tickets.token,
            openai_base_url=self.endpoint.base_url,
            documents_db=self.data_dir / "documents.db",
            log_dir=log_dir,
            provider_timeout_seconds=self.settings.provider_timeout_seconds,
        )

    # --- references --------------------------------------------------------------------

    async def reference(self, workload: Workload) -> dict[str, Any]:
        """The fault-free result of this workload's variant, run once per suite run."""
        variant = workload.variant
        if variant in self._references:
            return self._references[variant]
        queues = Queues(self.server.address, f"ref-{self.nonce}", f"ref-llm-{self.nonce}")
        if self._reference_worker is None:
            self._reference_worker = WorkerProcess(
                self.worker_config(queues, self.data_dir / "reference"), "all"
            )
            await self._reference_worker.start()
        self.endpoint.disarm()
        plain = Workload(
            workload.index, workload.kind, "sdk", workload.decision, workload.budget_tokens
        )
        record = await start_run(self.client, queues, plain, f"ref-{variant}-{self.nonce}")
        decision = asyncio.create_task(drive_decision(self.client, queues, record))
        await wait_closed(self.client, record, 300)
        decision.cancel()
        await collect_result(self.client, record)
        if record.summary is None:
            raise RuntimeError(
                f"the fault-free {variant} run did not deliver ({record.status}): {record.failure}"
            )
        self._references[variant] = record.summary
        return record.summary

    # --- one seed ----------------------------------------------------------------------

    async def _server_ready(self, seconds: float = 60) -> None:
        """Wait until the server answers: the seed before may have just restarted it."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                await self.client.workflow_service.get_system_info(
                    GetSystemInfoRequest(), timeout=timedelta(seconds=2)
                )
                return
            except RPCError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)

    async def run_seed(self, plan: SeedPlan) -> SeedResult:
        await self._server_ready()
        references = {w.index: await self.reference(w) for w in plan.workloads}
        tag = f"s{plan.seed}-{self.nonce}"
        queues = Queues(self.server.address, f"chaos-{tag}", f"chaos-llm-{tag}")
        log_dir = self.data_dir / f"seed-{plan.seed}"
        config = self.worker_config(queues, log_dir)
        workers = {role: WorkerProcess(config, role) for role in ("orchestration", "llm")}
        await asyncio.gather(*(w.start() for w in workers.values()))
        seed = SeedContext(
            self.client, queues, self.endpoint, self.tickets, self.ledger, self.server, workers
        )
        self.endpoint.disarm()
        seed.call_base = len(self.endpoint.calls)
        seed.workflow_ids = {
            w.index: workflow_id_for(w, f"{tag}-{w.index}") for w in plan.workloads
        }
        arm_model_faults(seed, plan.faults)
        bounds = {w.label: run_bound(plan, w, self.settings) for w in plan.workloads}
        seed.started = time.monotonic()
        fired = [Fired(f) for f in plan.faults]
        limit = max(bounds.values())
        tasks = [
            asyncio.create_task(fire(seed, f, fd, limit))
            for f, fd in zip(plan.faults, fired, strict=True)
        ]
        try:
            for workload in plan.workloads:
                seed.runs.append(
                    await start_run(self.client, queues, workload, f"{tag}-{workload.index}")
                )
            deciders = [
                asyncio.create_task(drive_decision(self.client, queues, r)) for r in seed.runs
            ]
            await asyncio.gather(
                *(wait_closed(self.client, r, bounds[r.workload.label]) for r in seed.runs)
            )
            await self._past_bound(seed, bounds)
            for task in deciders:
                task.cancel()
            await self._settle_faults(tasks, fired)
            # A step the service is still holding commits late: let it land first.
            await asyncio.sleep(
                max((f.hold_ms + f.after_commit_ms for f in plan.faults), default=0) / 1000
            )
            facts = [await self._facts(r, bounds, references) for r in seed.runs]
        finally:
            for task in tasks:
                task.cancel()
            self.endpoint.disarm()
            await asyncio.gather(*(w.stop() for w in workers.values()))
        checks = check_seed(facts)
        result = SeedResult(
            plan, fired, seed.runs, bounds, checks, time.monotonic() - seed.started, log_dir
        )
        if not result.passed:
            self.failed_seeds += 1
        return result

    async def _past_bound(self, seed: SeedContext, bounds: dict[str, float]) -> None:
        """A run over its bound is awaited a while longer, then cancelled, then terminated."""
        late = [r for r in seed.runs if r.ended is None]
        if not late:
            return
        grace = self.settings.grace_seconds
        await asyncio.gather(
            *(wait_closed(self.client, r, bounds[r.workload.label] + grace / 2) for r in late)
        )
        for record in late:
            if record.ended is None:
                record.notes.append("cancelled by the suite after its bound")
                await cancel_run(self.client, seed.queues, record, "sdk")
        await asyncio.gather(
            *(wait_closed(self.client, r, bounds[r.workload.label] + grace) for r in late)
        )
        for record in late:
            if record.ended is None:
                await terminate(self.client, record, "chaos: past its bound")
            # Ended, but late: the bound check sees the real duration.
            record.notes.append(f"ended {record.status.lower()} after its bound")

    async def _settle_faults(self, tasks: list[asyncio.Task[None]], fired: list[Fired]) -> None:
        """Faults whose moment never came are dropped; one under way is let finish."""
        for task, record in zip(tasks, fired, strict=True):
            if task.done():
                if not task.cancelled() and task.exception() is not None:
                    record.note = f"could not fire: {task.exception()!r}"
                continue
            if record.at is None:
                task.cancel()
                record.note = "moment never came (runs ended first)"
            else:
                await task

    async def _facts(
        self, record: RunRecord, bounds: dict[str, float], references: dict[int, dict[str, Any]]
    ) -> RunFacts:
        if record.status in ("COMPLETED", "FAILED"):
            await collect_result(self.client, record)
        saga = None
        if record.workload.kind == "saga":
            saga = await self.ledger.saga(record.workflow_id, record.description)
        return RunFacts(
            run=record,
            bound=bounds[record.workload.label],
            history=await read_histories(self.client, record.workflow_id),
            saga=saga,
            reference=references[record.workload.index],
        )
