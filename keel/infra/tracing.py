"""Traces of a request across the client, the router, the team and every call they make.

The SDK's OpenTelemetry interceptor (temporalio.contrib.opentelemetry) goes on the
client, so every worker built on it carries it too: it starts a span for each
workflow start, child workflow, activity and signal, and carries the trace's
context in Temporal headers, so one trace spans `client.py ask` down to the last
model call, whichever process ran it. Spans are exported over OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OpenTelemetry variables apply);
without it nothing is traced and no header is added to any payload.

Attributes name the model, tokens, cost, re-asks and the outcome; never a prompt, a
passage or an answer, which belong to the (encrypted) history, not to a trace store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.util.types import AttributeValue
from temporalio.contrib.opentelemetry import TracingInterceptor

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACER_NAME = "keel"
FLUSH_MILLIS = 5000

_provider: TracerProvider | None = None


def tracing_enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE))


def configure_tracing(service: str) -> TracerProvider | None:
    """Once per process, at its entry point: an OTLP exporter when an endpoint is set."""
    global _provider  # the process's one provider, set at its entry point
    if _provider is not None or not tracing_enabled():
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    _provider = TracerProvider(resource=Resource.create({"service.name": name}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    return _provider


def flush_tracing() -> None:
    """Export what is buffered: client.py leaves through os._exit, past atexit hooks."""
    if _provider is not None:
        _provider.force_flush(FLUSH_MILLIS)


def interceptors() -> list[TracingInterceptor]:
    """The SDK's tracing interceptor when tracing is on, for a client and its workers."""
    return [TracingInterceptor()] if tracing_enabled() else []


@contextmanager
def command_span(name: str, **attributes: AttributeValue) -> Iterator[None]:
    """The root span of one CLI command: everything the command starts is under it."""
    with trace.get_tracer(TRACER_NAME).start_as_current_span(name, attributes=attributes):
        yield


def annotate(**attributes: AttributeValue | None) -> None:
    """Set attributes on the current span (an activity's); a no-op when nothing traces."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({f"keel.{k}": v for k, v in attributes.items() if v is not None})
