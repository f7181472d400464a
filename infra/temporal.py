"""Connecting to Temporal with the pydantic data converter and our settings."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from infra.settings import TemporalSettings


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
) -> Client:
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        tls=tls_config(settings),
        data_converter=pydantic_data_converter,
        runtime=runtime,
        connect_timeout=connect_timeout,
    )
