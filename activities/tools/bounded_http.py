"""The streamable-HTTP transport with a limit on each response a server sends.

The SDK's client (mcp 2.3.0) reads a JSON response whole (`response.aread()`) before
anything checks its size: a server that answers with gigabytes makes the worker hold
them all. This is that client with a bounded read. A body whose declared length is
over `RESPONSE_LIMIT_BYTES`, or that grows past it as it streams, is dropped unread from
there, and its request gets a JSON-RPC error (`LINE_TOO_LONG`) in its place: the
call fails as `ToolResultTooLarge`, not retried, and the session stays open (each
request is its own POST). An SSE event is bounded by the same limit (the SDK's own
check), and going over it is reported the same way rather than as a dropped stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import anyio
import httpx2
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import StreamableHTTPTransport, StreamWriter
from mcp.shared._compat import resync_tracer
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp_types import RequestId
from pydantic import ValidationError

from activities.tools.bounded_stdio import LINE_TOO_LONG

# Four times the 1 MiB result limit: a result's text may come twice (as content and
# as structured content, as the SDK's servers send a string), each JSON-escaped. The
# result check after it (activities/tools/results.py) still applies.
RESPONSE_LIMIT_BYTES = 4 * 1024 * 1024

# How the SDK words an SSE event over its limit (httpx2's SSEError, mcp 2.3.0).
_SSE_TOO_LARGE = ("SSE stream failed", "byte limit")


class BoundedHttp(StreamableHTTPTransport):
    """The SDK's transport, reading at most `limit` bytes of one response."""

    def __init__(self, url: str, limit: int = RESPONSE_LIMIT_BYTES) -> None:
        super().__init__(url, max_sse_event_size=limit)
        self.limit = limit
        # Responses dropped for their size, for the log and the tests.
        self.refused = 0

    async def _handle_json_response(
        self,
        response: httpx2.Response,
        read_stream_writer: StreamWriter,
        *,
        request_id: RequestId,
    ) -> None:
        """The SDK's JSON handling, the body read in chunks and given up past the limit."""
        try:
            body = await self._bounded_body(response)
            if body is None:
                await response.aclose()
                await self._too_large(read_stream_writer, request_id)
                return
            message = types.jsonrpc_message_adapter.validate_json(body, by_name=False)
        except (httpx2.StreamError, ValidationError) as exc:
            error = types.ErrorData(
                code=types.PARSE_ERROR, message=f"Failed to parse JSON response: {exc}"
            )
            reply = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
            await read_stream_writer.send(SessionMessage(reply))
            return
        await read_stream_writer.send(SessionMessage(message))

    async def _bounded_body(self, response: httpx2.Response) -> bytes | None:
        """The whole body, or None once it is (or says it will be) over the limit."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return None
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.limit:
                return None
        return bytes(body)

    async def _resolve_abandoned_request(
        self,
        read_stream_writer: StreamWriter,
        request_id: RequestId,
        message: str,
        *,
        code: int = types.CONNECTION_CLOSED,
    ) -> None:
        """An SSE event over the limit is a result too large, not a broken stream."""
        if message.startswith(_SSE_TOO_LARGE[0]) and _SSE_TOO_LARGE[1] in message:
            await self._too_large(read_stream_writer, request_id)
            return
        await super()._resolve_abandoned_request(read_stream_writer, request_id, message, code=code)

    async def _too_large(self, read_stream_writer: StreamWriter, request_id: RequestId) -> None:
        self.refused += 1
        error = types.ErrorData(
            code=LINE_TOO_LONG,
            message=f"the server's answer is over the {self.limit}-byte response limit",
        )
        reply = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await read_stream_writer.send(SessionMessage(reply))


@contextlib.asynccontextmanager
async def bounded_http_client(
    transport: BoundedHttp, client: httpx2.AsyncClient
) -> AsyncGenerator[TransportStreams, None]:
    """`mcp.client.streamable_http.streamable_http_client` on a `BoundedHttp`; the
    caller owns `client`."""
    read_stream_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_stream_reader = create_context_streams[SessionMessage](0)
    async with (
        read_stream_writer,
        read_stream,
        write_stream,
        write_stream_reader,
        anyio.create_task_group() as tg,
    ):

        def start_get_stream() -> None:
            tg.start_soon(transport.handle_get_stream, client, read_stream_writer)

        tg.start_soon(
            transport.post_writer,
            client,
            write_stream_reader,
            read_stream_writer,
            write_stream,
            start_get_stream,
            tg,
        )
        try:
            yield read_stream, write_stream
        finally:
            if transport.session_id:
                await transport.terminate_session(client)
            tg.cancel_scope.cancel()
    await resync_tracer()
