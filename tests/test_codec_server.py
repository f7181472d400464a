"""The codec server as a process: bearer token, loopback by default, CORS for the UI only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from harness.testing.ports import free_port, wait_until_serving
from harness.testing.stack import ROOT
from keel.infra.codec import KEY_ID, EncryptionCodec, data_converter
from keel.infra.keys import CodecSettings, append_new_key, read_key_file
from keel.infra.payload_store import PayloadStoreSettings

TOKEN = "codec-test-token-0123456789abcdef"
UI = "http://localhost:8233"
SECRET = "zephyr-quartz-canary-4417"


def codec_server(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "keel.services.codec_server", "--log-format", "json", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("codec-server") / "codec.keys"
    append_new_key(path)
    return path


@pytest.fixture(scope="module")
def server(key_file: Path) -> Iterator[str]:
    port = free_port()
    process = codec_server(
        "--port", str(port), "--cors-origin", UI,
        env={"KEEL_CODEC_KEY_FILE": str(key_file), "KEEL_CODEC_SERVER_TOKEN": TOKEN},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/health", "the codec server", process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def parsed(response: httpx.Response) -> list[Payload]:
    return list(json_format.Parse(response.text, Payloads()).payloads)


def secret_payload() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{SECRET}"'.encode())


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "beyond loopback, without a bearer token"),
        (["--host", "codec.example"], {}, "beyond loopback, without a bearer token"),
        (["--host", "0.0.0.0"], {"KEEL_CODEC_SERVER_TOKEN": "short"}, "at least 16"),
        (["--cors-origin", "*"], {}, "wildcard CORS origin"),
        ([], {"KEEL_CODEC": "off"}, "nothing for a codec server to decode"),
    ],
)
def test_refuses_to_start_where_it_would_expose_histories(
    args: list[str], env: dict[str, str], message: str
) -> None:
    process = codec_server("--port", str(free_port()), *args, env=env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert message in err.decode()


def test_a_call_without_the_bearer_token_is_refused(server: str) -> None:
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    for headers in ({}, wrong, {"Authorization": TOKEN}):
        response = httpx.post(f"{server}/decode", content=body(secret_payload()), headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert SECRET not in response.text


def test_encode_and_decode_with_the_token_on_any_prefix(server: str, key_file: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    encoded = httpx.post(
        f"{server}/codecs/default/encode", content=body(secret_payload()), headers=auth
    )
    assert encoded.status_code == 200, encoded.text
    [sealed] = parsed(encoded)
    assert sealed.metadata[KEY_ID] == read_key_file(key_file).current_id.encode()
    assert SECRET not in encoded.text
    decoded = httpx.post(
        f"{server}/decode", content=body(sealed), headers={**auth, "X-Namespace": "default"}
    )
    assert decoded.status_code == 200, decoded.text
    assert parsed(decoded) == [secret_payload()]


async def test_a_payload_under_an_unknown_key_or_a_bad_body_is_a_400(
    server: str, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    append_new_key(tmp_path / "other.keys")
    other = EncryptionCodec(read_key_file(tmp_path / "other.keys"))
    [foreign] = await other.encode([secret_payload()])
    async with httpx.AsyncClient() as http:
        unknown = await http.post(f"{server}/decode", content=body(foreign), headers=auth)
        garbage = await http.post(f"{server}/decode", content="not json", headers=auth)
        elsewhere = await http.post(f"{server}/transcode", content=body(), headers=auth)
    assert unknown.status_code == 400
    assert "not in the key ring" in unknown.json()["error"]
    assert garbage.status_code == 400
    assert elsewhere.status_code == 404


def test_cors_answers_the_ui_origin_only_with_the_headers_the_ui_sends(server: str) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    allowed = httpx.options(f"{server}/decode", headers={"Origin": UI, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    for header in ("content-type", "x-namespace", "authorization"):
        assert header in allowed_headers
    assert "POST" in allowed.headers["access-control-allow-methods"]

    evil = "http://evil.example"
    refused = httpx.options(f"{server}/decode", headers={"Origin": evil, **preflight})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # A simple request from another page gets no CORS header, so its script cannot read it.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    other = httpx.post(f"{server}/decode", content=body(), headers={"Origin": evil, **auth})
    assert "access-control-allow-origin" not in other.headers
    ui = httpx.post(f"{server}/decode", content=body(), headers={"Origin": UI, **auth})
    assert ui.headers["access-control-allow-origin"] == UI


def test_without_a_token_it_answers_only_requests_addressed_to_loopback(key_file: Path) -> None:
    """A page re-pointed at 127.0.0.1 by DNS (rebinding) sends its own name as Host."""
    port = free_port()
    process = codec_server("--port", str(port), env={"KEEL_CODEC_KEY_FILE": str(key_file)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/health", "the codec server", process)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]:8081", "localhost"):
            answer = httpx.post(f"{url}/decode", content=body(), headers={"Host": host})
            assert answer.status_code == 200, host
        for host in (f"attacker.example:{port}", "10.0.0.5", "127.0.0.1.attacker.example"):
            answer = httpx.post(f"{url}/decode", content=body(), headers={"Host": host})
            assert answer.status_code == 403, host
    finally:
        process.terminate()
        process.wait(10)


async def test_a_reference_to_a_stored_payload_decodes_to_the_payload(
    server: str, key_file: Path, payload_store: Path
) -> None:
    """The Web UI sends what the history holds; a large payload there is a reference."""
    converter = data_converter(
        CodecSettings(codec_key_file=key_file),
        PayloadStoreSettings(payload_store_dir=payload_store),
    )
    [reference] = await converter.encode([SECRET * 10_000])
    assert reference.external_payloads  # stored, not inline
    assert SECRET.encode() not in reference.SerializeToString()
    async with httpx.AsyncClient() as http:
        decoded = await http.post(
            f"{server}/decode",
            content=body(reference),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert decoded.status_code == 200, decoded.text
    [plain] = parsed(decoded)
    assert plain.data.startswith(f'"{SECRET}'.encode())
