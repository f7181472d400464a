"""Large payloads out of the history, through the SDK's external storage.

A payload at or above the threshold (64 KiB by default) is written to a store after
the codec has encrypted it, and the history holds a reference of about a hundred
bytes: a long conversation or a big observation never pushes a run towards the
server's limits (2 MB a payload, 50 MB a history), and the store holds ciphertext
only. Two drivers:

- `local` (the default): a content-addressed folder, `.data/payloads/ab/cdef...`
  named by the SHA-256 of what is stored, shared by the processes of one machine.
  The same bytes are stored once; a file whose contents no longer match its name is
  refused, never decoded.
- `s3`: the SDK's S3 driver, on any S3-compatible service (MinIO in the compose
  cluster), for workers on several machines.

Every client and worker must use the same store: a reference is only as good as the
store it points into.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import aioboto3
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import ExternalStorageReference
from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient
from temporalio.converter import (
    ExternalStorage,
    JSONProtoPayloadConverter,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from keel.infra.settings import DATA_DIR

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_s3 import S3Client

DEFAULT_THRESHOLD = 64 * 1024
REFERENCE_TYPE = ExternalStorageReference.DESCRIPTOR.full_name.encode()
REFERENCE_CONVERTER = JSONProtoPayloadConverter()
DIGEST = "sha256"


class PayloadStoreSettings(BaseSettings):
    """Where payloads above the threshold go (``KEEL_PAYLOAD_*``)."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    payload_store: Literal["local", "s3", "off"] = Field(
        default="local", description="local folder, S3-compatible bucket, or off (all inline)"
    )
    payload_store_dir: Path = Field(
        default=DATA_DIR / "payloads", description="the local store's folder"
    )
    payload_threshold_bytes: int = Field(
        default=DEFAULT_THRESHOLD, ge=0, description="payloads this size and larger go out"
    )
    payload_s3_bucket: str = Field(default="keel-payloads", description="an existing bucket")
    payload_s3_endpoint: str | None = Field(
        default=None, description="S3-compatible endpoint, e.g. http://minio:9000"
    )
    payload_s3_region: str = Field(default="us-east-1", description="the bucket's region")


class CorruptPayload(ValueError):
    """A stored payload whose bytes no longer hash to its name."""


class ContentAddressedDriver(StorageDriver):
    """Payloads as files named by the SHA-256 of their bytes, under one folder.

    Writes go to a temporary file first and are renamed into place, so a crash never
    leaves half a payload under a valid name, and two processes storing the same
    bytes write the same file.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    def name(self) -> str:
        return "keel-local"

    def type(self) -> str:
        return "keel.ContentAddressed"

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise CorruptPayload(f"not a {DIGEST} digest: {digest[:80]!r}")
        return self._root / digest[:2] / digest[2:]

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        return await asyncio.to_thread(self._store_all, payloads)

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return await asyncio.to_thread(self._retrieve_all, claims)

    def _store_all(self, payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        claims = []
        for payload in payloads:
            data = payload.SerializeToString(deterministic=True)
            digest = hashlib.sha256(data).hexdigest()
            target = self.path(digest)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            claims.append(StorageDriverClaim(claim_data={DIGEST: digest}))
        return claims

    def _retrieve_all(self, claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        payloads = []
        for claim in claims:
            digest = claim.claim_data.get(DIGEST, "")
            target = self.path(digest)
            try:
                data = target.read_bytes()
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"payload {digest[:12]} is not in {self._root}: every client and worker"
                    " must share one payload store (KEEL_PAYLOAD_STORE_DIR or s3)"
                ) from None
            if hashlib.sha256(data).hexdigest() != digest:
                raise CorruptPayload(f"payload {digest[:12]} in {self._root} does not match")
            payloads.append(Payload.FromString(data))
        return payloads


class PerCallS3Client(S3StorageDriverClient):
    """The S3 calls the SDK's driver makes, each on a client of its own.

    No client outlives a call, so nothing needs closing when a process ends; only
    payloads above the threshold go this way, so the extra connection is rare.
    """

    def __init__(self, endpoint: str | None, region: str) -> None:
        self._session = aioboto3.Session()
        self._endpoint, self._region = endpoint, region

    def _client(self) -> ClientCreatorContext[S3Client]:
        return self._session.client("s3", endpoint_url=self._endpoint, region_name=self._region)

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        async with self._client() as s3:
            await s3.put_object(Bucket=bucket, Key=key, Body=data)

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        async with self._client() as s3:
            try:
                await s3.head_object(Bucket=bucket, Key=key)
            except s3.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return False
                raise
            return True

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        async with self._client() as s3:
            response = await s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data


def storage_driver(settings: PayloadStoreSettings) -> StorageDriver | None:
    if settings.payload_store == "off":
        return None
    if settings.payload_store == "s3":
        client = PerCallS3Client(settings.payload_s3_endpoint, settings.payload_s3_region)
        return S3StorageDriver(client=client, bucket=settings.payload_s3_bucket)
    return ContentAddressedDriver(settings.payload_store_dir)


def external_storage(settings: PayloadStoreSettings | None = None) -> ExternalStorage | None:
    """The converter's external storage, or None when KEEL_PAYLOAD_STORE=off."""
    settings = settings or PayloadStoreSettings()
    driver = storage_driver(settings)
    if driver is None:
        return None
    return ExternalStorage(
        drivers=[driver], payload_size_threshold=settings.payload_threshold_bytes
    )


async def resolve_references(
    storage: ExternalStorage | None, payloads: Sequence[Payload]
) -> list[Payload]:
    """Payloads with every store reference replaced by what it points to (still encrypted).

    For the codec server: the Web UI sends it what the history holds, and a large
    payload there is a reference; the page should show the payload, decrypted.
    """
    resolved = list(payloads)
    if storage is None:
        return resolved
    drivers = {driver.name(): driver for driver in storage.drivers}
    for index, payload in enumerate(payloads):
        if payload.metadata.get("messageType") != REFERENCE_TYPE:
            continue
        reference = REFERENCE_CONVERTER.from_payload(payload, ExternalStorageReference)
        driver = drivers.get(reference.driver_name)
        if driver is None:
            continue  # a store this process does not know: the reference stays as it is
        claim = StorageDriverClaim(claim_data=dict(reference.claim_data))
        [resolved[index]] = await driver.retrieve(StorageDriverRetrieveContext(), [claim])
    return resolved
