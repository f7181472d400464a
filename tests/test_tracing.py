"""One trace per request: the client's span at the root, every activity and child under it."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from typing import ClassVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from activities.documents.store import DocumentStore
from harness.testing.cli import cli_env
from harness.testing.processes import run_script
from harness.testing.stack import TEAM_REQUEST, new_id, running_workers, scripted_ask_input
from workflows.intent_router import IntentRouterWorkflow


async def _histories(client: Client, workflow_id: str) -> dict[str, list[HistoryEvent]]:
    """The run's history and its children's, recursively, by workflow id."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found: dict[str, list[HistoryEvent]] = {workflow_id: list(history.events)}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            found.update(await _histories(client, child))
    return found


async def test_a_team_run_is_one_trace_with_a_span_for_every_activity_and_child(
    client: Client, store: DocumentStore
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    traced = Client(
        client.service_client,
        namespace=client.namespace,
        data_converter=client.data_converter,
        interceptors=[TracingInterceptor(tracer)],
    )
    workflow_id = new_id("ask-traced")
    async with running_workers(traced, store) as settings:
        with tracer.start_as_current_span("client.py ask"):
            result = await traced.execute_workflow(
                IntentRouterWorkflow.run,
                scripted_ask_input(TEAM_REQUEST, "team_report", settings.llm_task_queue),
                id=workflow_id,
                task_queue=settings.task_queue,
            )
    assert result.decision.flow == "report"
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    ours = [s for s in spans if s.context is not None]
    assert len({s.context.trace_id for s in ours if s.context}) == 1
    roots = [s for s in ours if s.parent is None]
    assert [s.name for s in roots] == ["client.py ask"]

    histories = await _histories(client, workflow_id)
    assert len(histories) >= 5  # router, coordinator, two researchers, writer, reviewer...
    scheduled: Counter[str] = Counter()
    children: Counter[str] = Counter()
    for events in histories.values():
        for e in events:
            kind = e.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
            elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                child = e.start_child_workflow_execution_initiated_event_attributes
                children[child.workflow_type.name] += 1
    named = Counter(s.name for s in ours)
    for activity_type, count in scheduled.items():
        assert named[f"StartActivity:{activity_type}"] >= count, activity_type
        assert named[f"RunActivity:{activity_type}"] >= count, activity_type
    for workflow_type, count in children.items():
        assert named[f"StartChildWorkflow:{workflow_type}"] >= count, workflow_type
        assert named[f"RunWorkflow:{workflow_type}"] >= count, workflow_type

    calls = [s for s in ours if s.name == "RunActivity:complete_llm"]
    assert calls
    for span in calls:
        attributes = dict(span.attributes or {})
        assert attributes["keel.model"] == "scripted/team_report"
        assert attributes["keel.outcome"] == "ok"
        assert int(str(attributes["keel.tokens_out"])) > 0
        assert "keel.cost_usd" in attributes
        assert "keel.reask" in attributes
    tools = [s for s in ours if s.name == "RunActivity:call_tool"]
    assert tools
    assert {dict(s.attributes or {})["keel.tool"] for s in tools} >= {"search_documents"}
    # Never the request, a prompt or a passage: counts, names and outcomes only.
    values = [str(v) for s in ours for v in (s.attributes or {}).values()]
    assert not [v for v in values if "idempotency" in v.lower()]


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


async def test_client_exports_its_trace_over_otlp_when_an_endpoint_is_set(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    try:
        async with running_workers(client, store) as settings:
            asked = await run_script(
                "client.py", "--address", server_address, "ask", "hello there",
                *("--provider", "scripted", "--model", "ask_everything"),
                env={**cli_env(settings), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
            )  # fmt: skip
    finally:
        collector.shutdown()
    assert asked.code == 0, asked.stderr
    traces = [body for path, body in _Collector.received if path == "/v1/traces"]
    assert traces
    request = ExportTraceServiceRequest.FromString(traces[0])
    names = {
        span.name
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert {"client.py ask", "StartWorkflow:IntentRouterWorkflow"} <= names
    services = {
        attr.value.string_value
        for resource in request.resource_spans
        for attr in resource.resource.attributes
        if attr.key == "service.name"
    }
    assert services == {"keel-client"}
