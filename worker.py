"""Run the long-lived worker: orchestration (workflows, retrieval) and the LLM queue.

Model calls have a task queue of their own whose concurrency fits the model (one
at a time for the in-process local model), so a slow model never starves the
workflow tasks that keep every other run moving.

    python worker.py                        # everything, on the embedded defaults
    python worker.py --role llm --llm-concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pydantic
import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Interceptor, Worker, WorkerDeploymentConfig

from activities.contracts.activities import ContractActivities
from activities.contracts.loader import CONTRACTS_DIR, ContractError
from activities.contracts.source import ContractSource, supplier
from activities.documents.activities import DocumentActivities
from activities.documents.store import DocumentStore
from activities.fork.activities import fork_seeds
from activities.heartbeat import HEARTBEAT_EVERY_SECONDS
from activities.llm.activities import LLMActivities
from activities.llm.assembly import build_gates, build_gateway
from activities.llm.breakers import Breakers
from activities.llm.gateway import LLMGateway
from activities.tickets.activities import TicketActivities
from activities.tools.activities import ToolActivities
from activities.tools.lifecycle import mcp_sessions_closed
from keel.infra.codec import EncryptionCodec
from keel.infra.flows import FlowError, load_flows, workflow_name
from keel.infra.logging import LogContextInterceptor, configure_logging
from keel.infra.settings import TemporalSettings, WorkerSettings
from keel.infra.temporal import SearchAttributesMissing, connect_waiting, ensure_search_attributes
from keel.infra.tokens import TicketsTokenSettings, TokenError, load_tickets_token
from keel.infra.tracing import configure_tracing, flush_tracing
from keel.payloads.contracts import ContractSnapshot
from keel.rules.breaker import BreakerConfig
from workflows.agent import AgentWorkflow
from workflows.circuit_breaker import CircuitBreakerWorkflow
from workflows.coordinator import CoordinatorWorkflow
from workflows.ingest import IngestWorkflow
from workflows.intent_router import IntentRouterWorkflow
from workflows.priority import InheritPriority
from workflows.rate_limiter import RateLimiterWorkflow
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES
from workflows.tenant_budget import TenantBudgetWorkflow
from workflows.ticket_saga import TicketSagaWorkflow

log = structlog.get_logger()

WORKFLOWS = [
    ResearchWorkflow,
    IngestWorkflow,
    TicketSagaWorkflow,
    CircuitBreakerWorkflow,
    AgentWorkflow,
    CoordinatorWorkflow,
    IntentRouterWorkflow,
    RateLimiterWorkflow,
    TenantBudgetWorkflow,
]


HEARTBEAT_THROTTLE = timedelta(seconds=1)


def build_workers(
    client: Client,
    settings: WorkerSettings,
    gateway: LLMGateway,
    store: DocumentStore,
    *,
    max_cached_workflows: int = 1000,
    contracts: ContractSnapshot | ContractSource | None = None,
    heartbeats: bool = True,
    extra_workflows: Sequence[type] = (),
    extra_interceptors: Sequence[Interceptor] = (),
) -> list[Worker]:
    """The workers this process runs, by role; tests build them the same way.

    `extra_workflows` join the orchestration worker, with its activities: the bench
    runs a variant of a flow beside the flow itself that way.

    `extra_interceptors` follow the log context's on both workers: tests read what each
    activity was dispatched with (its priority, inherited from the run) that way.

    `heartbeats=False` leaves model calls silent: only the bench uses it, to price
    heartbeats beside the same run with them (a crash is then seen only after the
    start-to-close timeout, and a cancel never reaches the call).
    """
    # The worker's own contracts are a source read again when a file changes (new runs
    # see an edit); a snapshot handed in by a test or the bench stays as it is.
    snapshot_of = supplier(contracts if contracts is not None else ContractSource(CONTRACTS_DIR))
    common = _worker_options(settings, extra_interceptors)
    breakers = Breakers(
        settings.breaker_scope or settings.task_queue,
        settings.task_queue,
        _breaker_config(settings),
    )
    workers: list[Worker] = []
    llm = LLMActivities(gateway, breakers, HEARTBEAT_EVERY_SECONDS if heartbeats else None)
    # One queue (KEEL_LLM_TASK_QUEUE = KEEL_TASK_QUEUE): the orchestration worker runs
    # the model calls too, each handed over with the workflow task that scheduled it
    # (eager dispatch); they share its activity slots (harness/bench/README.md, issue 26).
    one_queue = settings.llm_task_queue == settings.task_queue
    if settings.worker_role in ("all", "orchestration"):
        workers.append(
            _orchestration_worker(
                client,
                settings,
                store,
                snapshot_of,
                breakers,
                extra_workflows,
                max_cached_workflows,
                common,
                [llm.complete] if one_queue else [],
            )
        )
    if settings.worker_role in ("all", "llm") and not one_queue:
        workers.append(_model_worker(client, settings, llm, common))
    return workers


def _model_worker(
    client: Client, settings: WorkerSettings, llm: LLMActivities, common: dict[str, Any]
) -> Worker:
    """Model calls on their own queue, as many at once as the model takes; the breakers'
    workflows run on the orchestration queue."""
    return Worker(
        client,
        task_queue=settings.llm_task_queue,
        activities=[llm.complete],
        max_concurrent_activities=settings.llm_concurrency,
        **common,
    )


def _worker_options(
    settings: WorkerSettings, extra_interceptors: Sequence[Interceptor]
) -> dict[str, Any]:
    """What both queues' workers share: interceptors, shutdown, heartbeats, versioning."""
    common: dict[str, Any] = {
        "interceptors": [LogContextInterceptor(), InheritPriority(), *extra_interceptors],
        "graceful_shutdown_timeout": timedelta(seconds=settings.graceful_shutdown_seconds),
        # Heartbeats reach the server at most this far apart (the SDK's default is 80 %
        # of the heartbeat timeout): a cancellation comes back in a heartbeat's answer,
        # so this bounds how long a cancelled model or tool call keeps running.
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }
    if settings.build_id:
        # Every run is pinned: it finishes on the build it started on, so a deploy never
        # changes the code under a run in flight. Long-lived runs move to the current
        # build when they continue as new. (A per-type behaviour on `workflow.defn`
        # would be refused by the server from workers without a build id.)
        common["deployment_config"] = WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(settings.deployment_name, settings.build_id),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )
    return common


def _breaker_config(settings: WorkerSettings) -> BreakerConfig:
    return BreakerConfig(
        window=settings.breaker_window,
        min_calls=settings.breaker_min_calls,
        failure_rate=settings.breaker_failure_rate,
        cooldown_seconds=settings.breaker_cooldown_seconds,
    )


# A workflow task waits this long on the queue of the worker that has the run in its
# cache before any worker may take it (and replay the history). A worker that stops
# gracefully hands its runs back at once; one that crashed stalls them for this long
# (the SDK's default is 10 s). A live worker that is so far behind that it misses 5 s
# only costs a replay elsewhere, never a wrong result (3 s slowed a burst of 100 flows
# on 2 cores by about 10 %: see README, Benchmarks).
STICKY_TIMEOUT = timedelta(seconds=5)


def _orchestration_worker(
    client: Client,
    settings: WorkerSettings,
    store: DocumentStore,
    snapshot_of: Callable[[], ContractSnapshot],
    breakers: Breakers,
    extra_workflows: Sequence[type],
    max_cached_workflows: int,
    common: dict[str, Any],
    model_calls: Sequence[Callable[..., Any]] = (),
) -> Worker:
    """Workflows, retrieval, tickets and tools on the orchestration queue (and the model
    calls, where they share it)."""
    # The user's own flows: a bad entry stops the worker with one line, before it polls.
    flows = load_flows(settings.flows, [workflow_name(w) for w in [*WORKFLOWS, *extra_workflows]])
    # The store refuses namespaces above a caller's clearance, as routes.toml sets them.
    documents = DocumentActivities(
        store,
        lambda: {n: ns.security for n, ns in snapshot_of().routes.namespaces.items()},
        settings.ingest_root_paths(),
    )
    tickets = TicketActivities(
        settings.tickets_url,
        load_tickets_token(
            TicketsTokenSettings(
                tickets_token=settings.tickets_token,
                tickets_token_file=settings.tickets_token_file,
            )
        ),
    )
    tools = ToolActivities(snapshot_of, documents, tickets, breakers)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[*WORKFLOWS, *extra_workflows, *flows],
        activities=[
            documents.search,
            documents.passages,
            documents.ingest,
            *tickets.all(),
            tools.call,
            ContractActivities(snapshot_of).snapshot,
            fork_seeds,
            *model_calls,
        ],
        # A validation error in workflow code is a bug to surface, not a task to retry
        # forever.
        workflow_failure_exception_types=[pydantic.ValidationError],
        max_cached_workflows=max_cached_workflows,
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        plugins=[mcp_sessions_closed(tools.mcp, tools.drain_breakers)],
        **common,
    )


def parse_args(argv: Sequence[str] | None = None) -> tuple[TemporalSettings, WorkerSettings]:
    """Flags override the environment; the environment overrides defaults."""
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="Temporal frontend (TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", help="Temporal namespace (TEMPORAL_NAMESPACE)")
    parser.add_argument("--role", dest="worker_role", choices=["all", "orchestration", "llm"])
    parser.add_argument("--task-queue", help="workflow and tool queue (KEEL_TASK_QUEUE)")
    parser.add_argument("--llm-task-queue", help="model call queue (KEEL_LLM_TASK_QUEUE)")
    parser.add_argument("--llm-concurrency", type=int, help="model calls at once")
    parser.add_argument("--documents-db", help="SQLite file of the document store")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port, 0 to disable")
    parser.add_argument(
        "--flow", dest="flows", action="append", help="a workflow of your own, module:Class"
    )
    parser.add_argument("--scripted-dir", help="folder of scripts for the scripted model")
    parser.add_argument("--tickets-url", help="ticket service base URL (KEEL_TICKETS_URL)")
    parser.add_argument("--contracts-dir", help="folder of contract files (KEEL_CONTRACTS_DIR)")
    parser.add_argument("--openai-base-url", help="OpenAI-compatible endpoint")
    parser.add_argument("--openai-schema-mode", choices=["json_schema", "json_object"])
    parser.add_argument("--log-format", choices=["auto", "json", "console"])
    parser.add_argument("--build-id", help="this build's id: turns versioning on (KEEL_BUILD_ID)")
    parser.add_argument("--deployment-name", help="Worker Deployment name (KEEL_DEPLOYMENT_NAME)")
    args = vars(parser.parse_args(argv))
    try:
        temporal = TemporalSettings(
            **{k: args.pop(k) for k in ("address", "namespace") if args[k] is not None}
        )
        worker = WorkerSettings(**{k: v for k, v in args.items() if v is not None})
    except pydantic.ValidationError as err:
        parser.error(str(err))
    if worker.llm_task_queue == worker.task_queue and worker.worker_role != "all":
        parser.error("one task queue for workflows and model calls needs --role all")
    return temporal, worker


async def run(temporal: TemporalSettings, settings: WorkerSettings) -> None:
    try:
        source = ContractSource(settings.contracts_dir or CONTRACTS_DIR)
    except ContractError as err:
        raise SystemExit(f"invalid contracts: {err}") from err
    runtime = _metrics_runtime(settings.metrics_port) if settings.metrics_port else None
    client = await connect_waiting(temporal, settings.connect_wait_seconds, runtime)
    try:
        added = await ensure_search_attributes(client, ALL_SEARCH_ATTRIBUTES)
    except SearchAttributesMissing as err:
        raise SystemExit(str(err)) from err
    if added:
        log.info("worker.search_attributes_registered", names=added)
    store = DocumentStore(settings.documents_db)
    try:
        gateway = build_gateway(
            settings,
            source.prompts,
            source.prices,
            passages=store,
            decoding=source.current().snapshot.quality.decoding.get("local"),
            gates=build_gates(settings, source),
        )
        workers = build_workers(client, settings, gateway, store, contracts=source)
    except TokenError as err:
        raise SystemExit(f"ticket service token: {err}") from None
    except FlowError as err:
        raise SystemExit(str(err)) from None
    await _serve(client, temporal, settings, workers)


def _metrics_runtime(port: int) -> Runtime:
    """A runtime that serves Prometheus metrics on `port`, or one line on why not."""
    try:
        return Runtime(
            telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"0.0.0.0:{port}"))
        )
    except ValueError as err:
        raise SystemExit(
            f"cannot serve metrics on port {port} ({err});"
            " choose another with --metrics-port or KEEL_METRICS_PORT, 0 to disable"
        ) from err


async def _serve(
    client: Client, temporal: TemporalSettings, settings: WorkerSettings, workers: list[Worker]
) -> None:
    """Run the workers until SIGINT or SIGTERM, then stop them gracefully."""
    codec = client.data_converter.payload_codec
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info(
            "worker.started",
            address=temporal.address,
            namespace=temporal.namespace,
            role=settings.worker_role,
            task_queues=[w.task_queue for w in workers],
            metrics_port=settings.metrics_port or None,
            # Which key new payloads are sealed with: after a rotation, the new one.
            codec_key=codec.current_key_id if isinstance(codec, EncryptionCodec) else None,
        )
        await stop.wait()
        log.info("worker.stopping", graceful_seconds=settings.graceful_shutdown_seconds)
    log.info("worker.stopped")


def main(argv: Sequence[str] | None = None) -> int:
    temporal, settings = parse_args(argv)
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing("keel-worker")
    try:
        asyncio.run(run(temporal, settings))
    finally:
        flush_tracing()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as stop:  # a message (one line for the user) or an exit code
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    # The SDK's native threads can crash interpreter teardown after a failed connect
    # (SIGABRT); skip teardown so the exit code is the one the worker chose.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
