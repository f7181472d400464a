"""Temporal's codec server protocol over the project's payload codec.

``POST <any prefix>/encode`` and ``<any prefix>/decode`` take and return the JSON form
of a ``Payloads`` message (``{"payloads": [...]}``), as the Web UI and ``temporal
--codec-endpoint`` send it; only the last path segment matters, so
``/codecs/{namespace}/decode`` works as well as ``/decode``. The namespace, from the
path or the UI's ``X-Namespace`` header, is logged but does not choose the key.

Whoever can call it reads every history in plaintext, so:
- it listens on loopback unless told otherwise, and refuses to listen anywhere else
  without a bearer token;
- with a token, every call must carry ``Authorization: Bearer <token>`` (the CLI's
  ``--codec-auth``), compared in constant time;
- browsers may call it only from the configured origins (the Web UI's), with the
  headers the UI sends; any other page gets no CORS headers and so cannot read answers;
- without a token it answers only requests addressed to a loopback name (the Host
  header), so a web page whose domain is re-pointed at 127.0.0.1 (DNS rebinding)
  cannot call it as its own origin.
"""

from __future__ import annotations

import ipaddress

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payloads
from temporalio.converter import ExternalStorage

from keel.infra.bearer import wrong_bearer
from keel.infra.codec import DecryptionError, EncryptionCodec
from keel.infra.payload_store import resolve_references

log = structlog.get_logger()

# A history's payloads are at most a few MB; a bigger body is not a UI request.
MAX_BODY_BYTES = 16 * 1024 * 1024
MIN_TOKEN_CHARS = 16
# The headers the Web UI sends (Authorization when it passes the user's token).
ALLOWED_HEADERS = ["Content-Type", "X-Namespace", "Authorization"]


class CodecServerSettings(BaseSettings):
    """Where the codec server listens and who may call it (``KEEL_CODEC_SERVER_*``)."""

    model_config = SettingsConfigDict(env_prefix="KEEL_CODEC_SERVER_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="where it listens; loopback by default")
    port: int = Field(default=8081, ge=0, le=65535, description="its port")
    token: SecretStr | None = Field(
        default=None, description="bearer token; required when host is not loopback"
    )
    cors_origins: str = Field(
        default="http://localhost:8233,http://127.0.0.1:8233",
        description="comma-separated origins of the Web UI allowed to call from a browser",
    )

    def origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]


class ExposureError(ValueError):
    """A configuration that would hand plaintext histories to the network."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere


def _loopback_host(header: str) -> bool:
    """The host of a Host header (`name`, `name:port`, `[::1]:port`) is a loopback name."""
    host = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    if host.startswith("["):
        host = host[1 : host.find("]")]
    return is_loopback(host)


def check_exposure(settings: CodecServerSettings) -> None:
    token = settings.token.get_secret_value() if settings.token else ""
    if settings.token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ExposureError(f"KEEL_CODEC_SERVER_TOKEN must be at least {MIN_TOKEN_CHARS} chars")
    if not is_loopback(settings.host) and not token:
        raise ExposureError(
            f"refusing to listen on {settings.host}, beyond loopback, without a bearer token:"
            " set KEEL_CODEC_SERVER_TOKEN"
        )
    for origin in settings.origins():
        if origin == "*":
            raise ExposureError("a wildcard CORS origin would let any page decode histories")


def build_app(
    codec: EncryptionCodec, settings: CodecServerSettings, storage: ExternalStorage | None = None
) -> FastAPI:
    """The codec server; with `storage`, references to large payloads decode to the payload."""
    check_exposure(settings)
    expected = f"Bearer {settings.token.get_secret_value()}".encode() if settings.token else None
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.origins(),
        allow_methods=["POST"],
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=True,
        max_age=600,
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/{path:path}")
    async def convert(path: str, request: Request) -> Response:
        if expected is None and not _loopback_host(request.headers.get("host", "")):
            return JSONResponse({"error": "not addressed to a loopback name"}, status_code=403)
        if expected is not None:
            refused = wrong_bearer(request, expected, "error")
            if refused is not None:
                return refused
        segments = [s for s in path.split("/") if s]
        action = segments[-1] if segments else ""
        if action not in ("encode", "decode"):
            return JSONResponse({"error": "POST .../encode or .../decode"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except json_format.ParseError as error:
            return JSONResponse({"error": f"not a Payloads message: {error}"}, status_code=400)
        namespace = request.headers.get("x-namespace") or (
            segments[-2] if len(segments) >= 2 else ""
        )
        try:
            if action == "encode":
                result = await codec.encode(payloads.payloads)
            else:
                stored = await resolve_references(storage, payloads.payloads)
                result = await codec.decode(stored)
        except DecryptionError as error:
            log.warning(
                "codec_server.refused", action=action, namespace=namespace, error=str(error)
            )
            return JSONResponse({"error": str(error)}, status_code=400)
        log.info("codec_server.call", action=action, namespace=namespace, payloads=len(result))
        return Response(
            json_format.MessageToJson(Payloads(payloads=result)), media_type="application/json"
        )

    return app
