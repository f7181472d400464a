"""AES-256-GCM payload codec: what the Temporal server stores is ciphertext.

Every payload (workflow and activity inputs and results, signals, queries, updates,
failure details, and, through the failure converter's encoded attributes, failure
messages and stack traces) is serialized whole, encrypted with the key ring's current
key and a random 96-bit nonce, and replaced by a payload whose metadata carries only
``encoding: binary/encrypted`` and the key's id. The key id is also the cipher's
associated data, so a payload cannot be passed off under another key's id.

The server, its database, the Web UI and ``temporal workflow show`` see ciphertext;
only a process holding the keys (a worker, the CLI, the codec server) reads the text.
Search attribute values, memo keys, workflow ids and activity summaries never pass
through a codec and stay readable.

Payloads without the encrypted encoding decode unchanged: histories recorded before
the codec was turned on still replay.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)

from keel.infra.keys import CodecSettings, KeyRing, load_key_ring
from keel.infra.payload_store import PayloadStoreSettings, external_storage
from keel.payloads.errors import REFUSALS

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A payload that cannot be decrypted: unknown key id, or tampered with."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's current key; decrypts with whichever key a payload names."""

    def __init__(self, ring: KeyRing) -> None:
        self._current = ring.current_id
        self._current_aad = ring.current_id.encode()
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys}

    @property
    def current_key_id(self) -> str:
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(
            nonce, payload.SerializeToString(), self._current_aad
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current_aad}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r}, which is not in the key ring"
                f" ({', '.join(self._ciphers)})"
            )
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag as error:
            raise DecryptionError(f"payload under key {key_id!r} failed authentication") from error
        return Payload.FromString(plain)


class FailureConverter(DefaultFailureConverter):
    """The SDK's failure converter, without stack traces on refusals.

    A refusal (``models.errors.REFUSALS``: a namespace above the caller's clearance,
    a path outside the ingest roots) is an answer, not a bug: its traceback would only
    show the worker's file paths to whoever reads the history, so the failure keeps its
    type and one-line message and drops the trace. Other failures keep theirs.
    """

    encode_attributes = False

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=False)

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        if (
            failure.HasField("application_failure_info")
            and failure.application_failure_info.type in REFUSALS
        ):
            failure.stack_trace = ""
        if self.encode_attributes:
            # As the SDK's encoded attributes: message and trace move into a payload,
            # which the codec then encrypts.
            failure.encoded_attributes.CopyFrom(
                payload_converter.to_payloads(
                    [{"message": failure.message, "stack_trace": failure.stack_trace}]
                )[0]
            )
            failure.message = "Encoded failure"
            failure.stack_trace = ""


class EncodedFailureConverter(FailureConverter):
    """Failure messages and stack traces in an (encrypted) payload, not in the clear."""

    encode_attributes = True


def encrypting_converter(ring: KeyRing) -> DataConverter:
    """The pydantic converter with the codec, failure messages and traces encoded too."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=EncodedFailureConverter,
    )


def data_converter(
    settings: CodecSettings | None = None, storage: PayloadStoreSettings | None = None
) -> DataConverter:
    """The converter every client, worker and tool of the project uses.

    Payloads are encrypted, then those above the threshold go to the payload store
    (keel/infra/payload_store.py), so the store holds ciphertext only. Raises KeyRingError
    when the codec is on and no key is found: starting in plaintext because a key went
    missing would write secrets to the server unseen.
    """
    settings = settings or CodecSettings()
    if settings.enabled:
        converter = encrypting_converter(load_key_ring(settings))
    else:
        converter = dataclasses.replace(
            pydantic_data_converter, failure_converter_class=FailureConverter
        )
    return dataclasses.replace(converter, external_storage=external_storage(storage))
