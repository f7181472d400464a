"""Connecting to Temporal with the pydantic data converter, the payload codec and our settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from keel.infra.codec import data_converter
from keel.infra.keys import CodecSettings, KeyRingError
from keel.infra.settings import TemporalSettings
from keel.infra.tracing import interceptors

log = structlog.get_logger()


def tls_config(settings: TemporalSettings) -> TLSConfig | bool:
    paths = (
        settings.tls_client_cert_path,
        settings.tls_client_key_path,
        settings.tls_server_ca_cert_path,
    )
    if not any(paths) and not settings.tls_server_name:
        # An API key implies TLS (Temporal Cloud); otherwise plain TLS only when asked.
        return settings.tls or settings.api_key is not None
    return TLSConfig(
        client_cert=settings.tls_client_cert_path.read_bytes()
        if settings.tls_client_cert_path
        else None,
        client_private_key=settings.tls_client_key_path.read_bytes()
        if settings.tls_client_key_path
        else None,
        server_root_ca_cert=settings.tls_server_ca_cert_path.read_bytes()
        if settings.tls_server_ca_cert_path
        else None,
        domain=settings.tls_server_name,
    )


async def connect(
    settings: TemporalSettings,
    runtime: Runtime | None = None,
    connect_timeout: timedelta = timedelta(seconds=5),
    codec: CodecSettings | None = None,
) -> Client:
    """A client whose payloads are encrypted unless KEEL_CODEC=off.

    Workers built on this client inherit its converter, so one setting covers the
    client, every worker and the CLI. Raises KeyRingError (before connecting) when the
    codec is on and no key can be found.
    """
    converter = data_converter(codec)
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        tls=tls_config(settings),
        data_converter=converter,
        runtime=runtime,
        connect_timeout=connect_timeout,
        # Workers built on this client inherit it: one trace spans every process.
        interceptors=interceptors(),
    )


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks attributes the workflows upsert, and they could not be added."""


async def ensure_search_attributes(
    client: Client, keys: Sequence[SearchAttributeKey[Any]]
) -> list[str]:
    """Register missing search attributes; returns the names it added.

    A workflow that upserts an attribute the namespace does not know fails its
    workflow task on every retry, so a run would hang without a word. Checking at
    start turns that into one clear error, or fixes it where the server allows.
    """
    namespace = client.namespace
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.UNIMPLEMENTED:
            return []  # servers without an operator service (the time-skipping test server)
        raise
    missing = [k for k in keys if k.name not in listed.custom_attributes]
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    k.name: IndexedValueType.ValueType(int(k.indexed_value_type)) for k in missing
                },
            )
        )
    except RPCError as error:
        commands = "; ".join(
            f"temporal operator search-attribute create --namespace {namespace}"
            f" --name {k.name} --type Keyword"
            for k in missing
        )
        raise SearchAttributesMissing(
            f"namespace {namespace!r} lacks search attributes"
            f" {[k.name for k in missing]} and they could not be added ({error.message});"
            f" register them with: {commands}"
        ) from error
    return [k.name for k in missing]


async def connect_waiting(
    temporal: TemporalSettings, wait_seconds: float, runtime: Runtime | None
) -> Client:
    """Connect, waiting up to `wait_seconds` for a server that is not up yet.

    A worker restarted by its supervisor while the server restarts too (a host
    reboot, an upgrade) waits for it instead of exiting, which would leave runs
    without a worker until someone notices.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await connect(temporal, runtime=runtime)
        except KeyRingError as err:
            raise SystemExit(f"payload codec: {err}") from err
        except RuntimeError as err:
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"cannot reach Temporal at {temporal.address}: {err}\n"
                    "start the embedded server with: python devserver.py start"
                ) from err
            log.warning("worker.waiting_for_temporal", address=temporal.address)
            await asyncio.sleep(1)
