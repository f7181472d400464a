"""The worker's MCP servers: one session each, kept open, started again when one dies.

A stdio server is a child process of the worker; an HTTP server is a URL. Either
way one `mcp.Client` session per server serves every call, held open by a task of
its own (the SDK's transports are bound to the task that enters them). A call that
finds its session broken (the process died, the connection dropped) retires it and
fails as retryable: the retry starts the server again on a fresh session.

Secrets come from the worker's environment by the names the contract gives, when
the session opens, and every text that leaves this module (a result, an error)
has them replaced by `***`: a server that echoes its token puts none in history.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
import structlog
from mcp import Client, MCPError, StdioServerParameters
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    CallToolResult,
    RequestParamsMeta,
    Tool,
)
from temporalio.exceptions import ApplicationError

from activities.tools.bounded_http import RESPONSE_LIMIT_BYTES, BoundedHttp, bounded_http_client
from activities.tools.bounded_stdio import LINE_TOO_LONG, BoundedStdio
from keel.payloads.errors import (
    TOOL_CALL_REJECTED,
    TOOL_RESULT_INVALID,
    TOOL_RESULT_TOO_LARGE,
    TOOL_SERVER_UNAVAILABLE,
)
from keel.payloads.tool_specs import McpServerSpec

log = structlog.get_logger()

# JSON-RPC errors that the same request would get again; every other one (an internal
# error, a closed connection, a timeout) may pass on a retry.
REJECTIONS = frozenset({PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS})
ERROR_CHARS = 300
KEY_META = "dev.keel/idempotency-key"  # a keyed call's key, in its request's `_meta`
KEY_HEADER_META = "dev.keel/idempotency-header"  # the header it goes in over HTTP


class ServerSetupError(ValueError):
    """A server's declaration cannot be turned into a connection (a variable unset)."""


def secrets_of(name: str, spec: McpServerSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The values the server gets from the worker's environment, by the names declared."""
    values: dict[str, str] = {}
    for target, variable in {**spec.env, **spec.headers}.items():
        value = environ.get(variable)
        if value is None:
            kind = "env" if target in spec.env else "header"
            raise ServerSetupError(
                f"server {name!r}: {kind} {target} takes ${variable},"
                " which is not set in the worker's environment"
            )
        values[target] = value
    return values


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every secret value replaced: what a server echoes stays out of history."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def open_client(
    name: str, spec: McpServerSpec, environ: Mapping[str, str] | None = None
) -> tuple[Client, dict[str, str], BoundedStdio | None]:
    """An unentered session for the server, the secret values it was given, and for a
    stdio server its transport (which says whether a line went over the limit)."""
    values = secrets_of(name, spec, os.environ if environ is None else environ)
    if spec.command is not None:
        params = StdioServerParameters(
            command=spec.command,
            args=spec.args,
            env={target: values[target] for target in spec.env},
        )
        transport = BoundedStdio(params)
        # No response cache: each call must reach the server, as its history says it did.
        return Client(transport, cache=None), values, transport
    assert spec.url is not None
    http = create_mcp_http_client(headers={h: values[h] for h in spec.headers})
    http.event_hooks = {"request": [_key_in_header]}
    return Client(_HttpTransport(spec.url, http), cache=None), values, None


@dataclass
class _HttpTransport:
    """The streamable-HTTP transport, each response bounded, its HTTP client closed with it."""

    url: str
    http: httpx2.AsyncClient
    _inner: AbstractAsyncContextManager[Any] | None = field(default=None, init=False)

    async def __aenter__(self) -> Any:
        await self.http.__aenter__()
        self._inner = bounded_http_client(BoundedHttp(self.url), self.http)
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._inner is not None:
                await self._inner.__aexit__(*exc)
        finally:
            await self.http.__aexit__(*exc)


def key_meta(header: str, key: str) -> RequestParamsMeta:
    """The `_meta` of a call whose key goes in `header` (namespaced, as MCP asks)."""
    meta: dict[str, Any] = {KEY_META: key, KEY_HEADER_META: header}
    return cast(RequestParamsMeta, meta)  # an open map; mypy reads it as closed


async def _key_in_header(request: httpx2.Request) -> None:
    """A keyed call's key, carried in its `_meta`, set in the header its contract names.

    Per request, so the session stays shared: a key in the client's headers would go
    with every call, and a session of its own per keyed call costs an MCP handshake."""
    if request.method != "POST" or KEY_META.encode() not in request.content:
        return
    try:
        meta = json.loads(request.content)["params"]["_meta"]
        key, header = meta[KEY_META], meta[KEY_HEADER_META]
    except (ValueError, KeyError, TypeError):
        return
    if isinstance(key, str) and isinstance(header, str):
        request.headers[header] = key


class _Session:
    """One open session, owned by its own task from open to close."""

    def __init__(self, name: str, spec: McpServerSpec, environ: Mapping[str, str]) -> None:
        self.name = name
        self.spec = spec
        self.client, self.secrets, self.stdio = open_client(name, spec, environ)
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Client] = loop.create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(), name=f"mcp-{name}")
        self.broken = False

    async def _own(self) -> None:
        try:
            async with self.client:
                self._ready.set_result(self.client)
                await self._stop.wait()
        except BaseException as error:  # the session's end, however it came
            if not self._ready.done():
                self._ready.set_exception(error)
        finally:
            self.broken = True

    async def opened(self) -> Client:
        return await asyncio.wait_for(asyncio.shield(self._ready), self.spec.startup_seconds)

    async def close(self) -> None:
        self.broken = True
        self._stop.set()
        if not self._ready.done():
            self._owner.cancel()
        # An unresponsive server must not hold the worker's shutdown for long.
        await asyncio.wait([self._owner], timeout=10)


class McpServers:
    """The worker's sessions, one per declared server, opened on first use."""

    def __init__(
        self,
        servers_of: Callable[[], Mapping[str, McpServerSpec]],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._servers_of = servers_of
        self._environ = os.environ if environ is None else environ
        self._sessions: dict[str, _Session] = {}
        self._lock = asyncio.Lock()
        self.starts: dict[str, int] = {}

    async def _session(self, name: str) -> _Session:
        spec = self._servers_of().get(name)
        if spec is None:
            raise ApplicationError(
                f"no MCP server {name!r} in tools.toml", type=TOOL_CALL_REJECTED, non_retryable=True
            )
        async with self._lock:
            session = self._sessions.get(name)
            if session is not None and (session.broken or session.spec != spec):
                # Dead, or declared differently since it opened: start it again.
                self._sessions.pop(name)
                await session.close()
                session = None
            if session is None:
                try:
                    session = _Session(name, spec, self._environ)
                except ServerSetupError as error:
                    raise ApplicationError(
                        str(error), type=TOOL_SERVER_UNAVAILABLE, non_retryable=True
                    ) from None
                self._sessions[name] = session
                self.starts[name] = self.starts.get(name, 0) + 1
                log.info("mcp.session_opening", server=name, start=self.starts[name])
        try:
            await session.opened()
        except (Exception, asyncio.CancelledError) as error:
            await self._retire(session)
            if isinstance(error, asyncio.CancelledError):
                raise
            raise self._unavailable(session, "did not start", error) from None
        return session

    async def call(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        limit_seconds: float,
        key_header: tuple[str, str] | None = None,
    ) -> tuple[CallToolResult, dict[str, str]]:
        """The tool's result and the secrets to redact from it; typed errors otherwise.

        `key_header` (a header's name, keel's key) goes with the call in its `_meta`,
        from where the HTTP transport copies it into that header of the call's request."""
        meta = None if key_header is None else key_meta(*key_header)
        session = await self._session(server)
        try:
            result = await session.client.call_tool(
                tool, arguments, read_timeout_seconds=limit_seconds, meta=meta
            )
        except MCPError as error:
            if error.code == LINE_TOO_LONG or (session.stdio and session.stdio.overflowed):
                if error.code != LINE_TOO_LONG:
                    await self._retire(session)  # the stream lost its place: start afresh
                raise self._too_long(session, tool) from None
            if error.code in REJECTIONS:
                said = f"{server}: {tool} refused: "
                raise _final(said, error.message, session, TOOL_CALL_REJECTED) from None
            await self._retire(session)
            raise self._unavailable(session, f"failed on {tool}", error) from None
        except (Exception, asyncio.CancelledError) as error:
            if isinstance(error, asyncio.CancelledError):
                raise  # a cancelled call leaves the session healthy
            if session.stdio and session.stdio.overflowed:
                await self._retire(session)
                raise self._too_long(session, tool) from None
            if isinstance(error, RuntimeError) and "structured content" in str(error):
                # The SDK's own check of the result against the listed output schema.
                said = f"{tool} returned a result that breaks its output schema: "
                raise _final(said, str(error), session, TOOL_RESULT_INVALID) from None
            await self._retire(session)
            raise self._unavailable(session, f"failed on {tool}", error) from None
        return result, session.secrets

    def _too_long(self, session: _Session, tool: str) -> ApplicationError:
        """Non-retryable: the same call would get the same flood."""
        limit = session.stdio.limit if session.stdio else RESPONSE_LIMIT_BYTES
        unit = "line" if session.stdio else "response"
        log.warning("mcp.line_too_long", server=session.name, tool=tool, limit=limit)
        return ApplicationError(
            f"{session.name}: {tool} answered with a message over the {limit}-byte {unit} limit;"
            " the rest was dropped unread",
            type=TOOL_RESULT_TOO_LARGE,
            non_retryable=True,
        )

    async def list_tools(self, server: str) -> list[Tool]:
        """Every tool the server lists, page by page."""
        session = await self._session(server)
        return await list_all_tools(session.client)

    async def _retire(self, session: _Session) -> None:
        async with self._lock:
            if self._sessions.get(session.name) is session:
                self._sessions.pop(session.name)
        await session.close()

    def _unavailable(self, session: _Session, what: str, error: BaseException) -> ApplicationError:
        """Retryable, with the error's kind and its text stripped of secrets."""
        detail = redact(str(error) or type(error).__name__, session.secrets)[:ERROR_CHARS]
        log.warning(
            "mcp.server_unavailable", server=session.name, what=what, error=type(error).__name__
        )
        return ApplicationError(
            f"MCP server {session.name!r} {what}: {type(error).__name__}: {detail}",
            type=TOOL_SERVER_UNAVAILABLE,
        )

    async def close(self) -> None:
        """Every session closed and every stdio server stopped (the worker's shutdown)."""
        async with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def list_all_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages for ever is cut off
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _final(said: str, message: str, session: _Session, kind: str) -> ApplicationError:
    """A failure no retry mends: `said`, then its server's message redacted and cut short."""
    text = redact(message, session.secrets)[:ERROR_CHARS]
    return ApplicationError(said + text, type=kind, non_retryable=True)
