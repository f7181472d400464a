"""The payload codec and its key ring, without a server."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from devserver import codec_env
from keel.infra.codec import ENCODING, KEY_ID, DecryptionError, EncryptionCodec, data_converter
from keel.infra.keys import (
    CodecSettings,
    KeyRing,
    KeyRingError,
    append_new_key,
    load_key_ring,
    main,
    parse_inline,
    read_key_file,
)

SECRET = "zephyr-quartz-canary-4417"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def ring(*ids: str) -> KeyRing:
    return KeyRing(tuple((key_id, bytes([n]) * 32) for n, key_id in enumerate(ids)))


async def test_a_payload_is_ciphertext_tagged_with_its_key_and_decrypts_back() -> None:
    codec = EncryptionCodec(ring("a"))
    [sealed] = await codec.encode([plain(SECRET)])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"a"
    assert set(sealed.metadata) == {"encoding", KEY_ID}  # the inner encoding is hidden too
    assert SECRET.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain(SECRET)]
    # A fresh nonce per payload: equal plaintexts give different ciphertexts.
    [again] = await codec.encode([plain(SECRET)])
    assert again.data != sealed.data


async def test_after_rotation_old_payloads_decode_and_new_ones_use_the_new_key() -> None:
    [old] = await EncryptionCodec(ring("a")).encode([plain("written under a")])
    rotated = EncryptionCodec(ring("a", "b"))
    assert rotated.current_key_id == "b"
    assert await rotated.decode([old]) == [plain("written under a")]
    [new] = await rotated.encode([plain("written under b")])
    assert new.metadata[KEY_ID] == b"b"
    with pytest.raises(DecryptionError, match="'b', which is not in the key ring"):
        await EncryptionCodec(ring("a")).decode([new])


async def test_tampered_or_relabelled_ciphertext_is_refused() -> None:
    codec = EncryptionCodec(ring("a", "b"))
    [sealed] = await codec.encode([plain(SECRET)])
    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([flipped])
    # The key id is authenticated data: naming another key in the ring fails too.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"a"
    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([relabelled])


async def test_plaintext_payloads_from_before_the_codec_pass_through() -> None:
    codec = EncryptionCodec(ring("a"))
    assert await codec.decode([plain("recorded in plaintext")]) == [plain("recorded in plaintext")]


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    key = base64.b64encode(b"k" * 32).decode()
    converter = data_converter(CodecSettings(codec_keys=f"a:{key}"))
    failure = Failure()
    try:
        raise ApplicationError(f"provider said {SECRET}", type="ProviderError")
    except ApplicationError as error:
        await converter.encode_failure(error, failure)
    raw = failure.SerializeToString()
    assert SECRET.encode() not in raw
    assert b"test_codec.py" not in raw  # the stack trace's file names too
    assert failure.message == "Encoded failure"
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"provider said {SECRET}"
    assert decoded.type == "ProviderError"


@pytest.mark.parametrize("codec", ["on", "off"])
async def test_a_refusal_keeps_its_one_line_and_drops_its_stack_trace(codec: str) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    converter = data_converter(CodecSettings(codec=codec, codec_keys=f"a:{key}"))

    async def converted(error_type: str) -> ApplicationError:
        failure = Failure()
        try:
            try:
                raise ValueError("the cause")
            except ValueError as cause:
                raise ApplicationError("namespace 'x' is restricted", type=error_type) from cause
        except ApplicationError as error:
            await converter.encode_failure(error, failure)
        assert b"test_codec.py" not in failure.SerializeToString() or codec == "off"
        decoded = await converter.decode_failure(failure)
        assert isinstance(decoded, ApplicationError)
        assert decoded.message == "namespace 'x' is restricted"
        # Each level encoded once, and decoded back.
        assert isinstance(decoded.cause, ApplicationError)
        assert decoded.cause.message == "the cause"
        return decoded

    refused = await converted("AccessDenied")
    assert refused.failure is not None
    assert refused.failure.stack_trace == ""
    # Only refusals: a bug keeps the trace that locates it.
    bug = await converted("SchemaViolation")
    assert bug.failure is not None
    assert "test_codec.py" in bug.failure.stack_trace


def test_key_file_is_private_appended_on_rotation_and_the_last_key_is_current(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "codec.keys"
    first = append_new_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = append_new_key(path)
    loaded = read_key_file(path)
    assert loaded.ids() == [first, second]
    assert loaded.current_id == second
    assert all(len(key) == 32 for _, key in loaded.keys)


def test_keys_command_creates_rotates_and_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "codec.keys"
    assert main(["rotate", "--key-file", str(path)]) == 1  # nothing to rotate yet
    assert main(["new", "--key-file", str(path)]) == 0
    assert main(["new", "--key-file", str(path)]) == 1  # never overwrites keys
    assert main(["rotate", "--key-file", str(path)]) == 0
    capsys.readouterr()
    assert main(["list", "--key-file", str(path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2
    assert listed[1].endswith("(current)")
    assert listed == [read_key_file(path).ids()[0], read_key_file(path).current_id + " (current)"]
    # The same ring as one environment value, for compose and other deployments.
    assert main(["env", "--key-file", str(path)]) == 0
    assert parse_inline(capsys.readouterr().out.strip()) == read_key_file(path)


def test_inline_keys_and_their_mistakes() -> None:
    key = base64.b64encode(b"x" * 32).decode()
    assert parse_inline(f"old:{key}, new:{key}").current_id == "new"
    for text, message in [
        (key, "without ':'"),
        ("a:not-base64!", "not base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "needs 32"),
        (f"a:{key},a:{key}", "duplicate"),
        (f"bad id:{key}", "must match"),
        ("", "at least one key"),
    ]:
        with pytest.raises(KeyRingError, match=message):
            parse_inline(text)


def test_without_a_key_the_codec_refuses_rather_than_writing_plaintext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .data/codec.keys here
    for name in ("KEEL_CODEC", "KEEL_CODEC_KEYS", "KEEL_CODEC_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KeyRingError, match="KEEL_CODEC=off"):
        load_key_ring(CodecSettings())
    monkeypatch.setenv("KEEL_CODEC", "off")
    plain = data_converter()
    assert plain.payload_codec is None
    assert plain.payload_converter_class is pydantic_data_converter.payload_converter_class


def test_devserver_generates_a_key_only_when_none_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEEL_CODEC", "KEEL_CODEC_KEYS", "KEEL_CODEC_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    generated = codec_env(tmp_path / "fresh")
    assert generated is not None
    key_file = Path(generated["KEEL_CODEC_KEY_FILE"])
    assert key_file == (tmp_path / "fresh" / "codec.keys").resolve()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # A second start keeps the key: histories written under it must stay readable.
    assert codec_env(tmp_path / "fresh") == generated
    assert len(read_key_file(key_file).ids()) == 1

    # The user's own key wins, and nothing is written.
    own = tmp_path / "own.keys"
    append_new_key(own)
    monkeypatch.setenv("KEEL_CODEC_KEY_FILE", str(own))
    configured = codec_env(tmp_path / "configured")
    assert configured is not None
    assert configured["KEEL_CODEC_KEY_FILE"] == str(own)
    assert not (tmp_path / "configured" / "codec.keys").exists()

    # Off only by the explicit setting: no key, no codec server.
    monkeypatch.setenv("KEEL_CODEC", "off")
    assert codec_env(tmp_path / "off") is None
    assert not (tmp_path / "off" / "codec.keys").exists()
