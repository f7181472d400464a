"""Large payloads out of the history: the local store, S3-compatible storage, and the codec.

The conversation here sends its whole transcript with every model call, the pattern
that got a public run terminated at 50 MB; with the store, each large input is kept
once, encrypted, and the history holds a reference.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import StorageDriverClaim, StorageDriverRetrieveContext
from temporalio.converter import StorageDriverStoreContext as StoreContext

from activities.documents.store import DocumentStore
from harness.soak.run import SCRIPTS, conversation, history_figures
from harness.soak.workflows import SoakConversationWorkflow
from harness.testing.ports import free_port, wait_until_serving
from harness.testing.processes import run_script
from harness.testing.stack import running_workers, worker_settings
from keel.infra.codec import data_converter
from keel.infra.keys import CodecSettings
from keel.infra.payload_store import ContentAddressedDriver, CorruptPayload, PayloadStoreSettings
from keel.payloads.research import Draft

if TYPE_CHECKING:
    pass

THRESHOLD = 64 * 1024


async def _talk(client: Client, store: DocumentStore, calls: int, marker: str) -> dict[str, Any]:
    """The soak's conversation on workers of this client: 30,000 characters a message."""
    settings = worker_settings(scripted_dir=SCRIPTS)
    async with running_workers(client, store, settings, extra_workflows=[SoakConversationWorkflow]):
        return await conversation(
            client, settings.task_queue, settings.llm_task_queue, calls, 30_000, marker
        )


async def test_the_local_store_keeps_a_payload_once_under_its_digest(tmp_path: Path) -> None:
    driver = ContentAddressedDriver(tmp_path)
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=secrets.token_bytes(1000))
    first, again = await driver.store(StoreContext(), [payload, payload])
    assert first == again
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1
    [back] = await driver.retrieve(StorageDriverRetrieveContext(), [first])
    assert back == payload
    files[0].write_bytes(files[0].read_bytes()[:-1] + b"x")  # one byte changed on disk
    with pytest.raises(CorruptPayload, match="does not match"):
        await driver.retrieve(StorageDriverRetrieveContext(), [first])
    missing = StorageDriverClaim(claim_data={"sha256": "0" * 64})
    with pytest.raises(FileNotFoundError, match="share one payload store"):
        await driver.retrieve(StorageDriverRetrieveContext(), [missing])
    with pytest.raises(CorruptPayload, match="not a sha256 digest"):
        await driver.retrieve(
            StorageDriverRetrieveContext(), [StorageDriverClaim({"sha256": "../x"})]
        )


async def test_a_whole_transcript_per_call_leaves_only_references_in_the_history(
    client: Client, store: DocumentStore, payload_store: Path
) -> None:
    marker = f"canary-{secrets.token_hex(6)}"
    load = await _talk(client, store, 6, marker)
    [run] = load["runs"]
    assert run["status"] == "COMPLETED"
    # The model saw the whole conversation on the last call...
    assert load["transcript_chars"] > 180_000
    assert load["last_tokens_in"] > 10_000
    # ...while every input from the third call on is a reference in the history.
    assert run["references"] == 4
    assert run["largest_payload"] < THRESHOLD
    assert run["stored_bytes"] > 4 * THRESHOLD
    stored = [p.read_bytes() for p in payload_store.rglob("*") if p.is_file()]
    assert len(stored) >= 4
    assert not any(marker.encode() in blob for blob in stored)  # ciphertext at rest
    history = await client.get_workflow_handle(load["workflow_id"]).fetch_history()
    assert marker.encode() not in history.to_json().encode()
    assert history_figures(history)["references"] == 4


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server in a process of its own, with the bucket the store needs."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                patch.setenv(name, "test")  # the server takes any credentials
            wait_until_serving(endpoint, "the S3-compatible server", server)
            asyncio.run(_create_bucket(endpoint, "keel-test-payloads"))
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _create_bucket(endpoint: str, bucket: str) -> None:
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1"
    ) as s3:
        await s3.create_bucket(Bucket=bucket)


async def _objects(endpoint: str, bucket: str) -> list[bytes]:
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1"
    ) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        found = []
        for item in listed.get("Contents", []):
            body = (await s3.get_object(Bucket=bucket, Key=item["Key"]))["Body"]
            found.append(await body.read())
        return found


async def test_an_s3_compatible_store_holds_the_large_payloads_encrypted(
    server_address: str, store: DocumentStore, s3_endpoint: str
) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    converter = data_converter(
        CodecSettings(codec_keys=SecretStr(f"s3test:{key}")),
        PayloadStoreSettings(
            payload_store="s3",
            payload_s3_endpoint=s3_endpoint,
            payload_s3_bucket="keel-test-payloads",
        ),
    )
    marker = f"canary-{secrets.token_hex(6)}"
    big = Draft(answer="An answer that cites its passage.", citations=[1])
    [reference] = await converter.encode([{"text": marker * 10_000, "draft": big.model_dump()}])
    assert reference.external_payloads
    assert reference.ByteSize() < 1024
    [value] = await converter.decode([reference])
    assert value["text"].startswith(marker)

    client = await Client.connect(server_address, data_converter=converter)
    load = await _talk(client, store, 4, marker)
    [run] = load["runs"]
    assert run["status"] == "COMPLETED"
    assert run["references"] == 2
    assert run["largest_payload"] < THRESHOLD
    objects = await _objects(s3_endpoint, "keel-test-payloads")
    assert len(objects) >= 3
    assert not any(marker.encode() in blob for blob in objects)


def test_the_store_can_be_turned_off() -> None:
    assert (
        data_converter(storage=PayloadStoreSettings(payload_store="off")).external_storage is None
    )
    converter = data_converter(storage=PayloadStoreSettings())
    assert converter.external_storage is not None
    assert converter.external_storage.payload_size_threshold == THRESHOLD
    assert dataclasses.is_dataclass(converter)


async def test_the_soak_holds_every_run_to_the_limits(tmp_path: Path) -> None:
    """`python -m harness.soak` as a user runs it: 100 calls near 200k tokens, 1,000 agent turns."""
    out = tmp_path / "soak.json"
    result = await run_script("harness.soak", "--json", str(out), limit_seconds=600)
    assert result.code == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "every run within the limits" in result.stdout
    figures = json.loads(out.read_text())
    talk, agent = figures["conversation"], figures["agent"]
    assert talk["calls"] == 100
    assert talk["transcript_chars"] >= 800_000  # about 200k tokens on the last call
    assert [run["status"] for run in talk["runs"]] == ["COMPLETED"]
    assert talk["runs"][0]["references"] >= 90
    assert agent["turns"] == 1_000
    assert len(agent["runs"]) >= 2  # it continued as new on the way
    for run in talk["runs"] + agent["runs"]:
        assert run["bytes"] < 2 * 1024 * 1024
        assert run["events"] < 10_240
        assert run["largest_payload"] <= 256 * 1024
    assert not figures["payload_store"]["plaintext_found"]
