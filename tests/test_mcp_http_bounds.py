"""An HTTP MCP server that answers with too much: refused as it streams, never held whole.

The server is the SDK's own (harness/testing/mcp_http_server.py) in a process of its own, with
its `huge` tool; the worker's side is `McpServers`, as the `call_tool` activity uses it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import mcp_types as types
import pytest
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from temporalio.exceptions import ApplicationError

from activities.tools.bounded_http import RESPONSE_LIMIT_BYTES, BoundedHttp
from activities.tools.bounded_stdio import LINE_TOO_LONG
from activities.tools.mcp_servers import McpServers
from harness.testing.mcp_setup import http_server
from keel.payloads.errors import TOOL_RESULT_TOO_LARGE
from keel.payloads.tool_specs import McpServerSpec

TOKEN = "http-bounds-token"


@pytest.mark.parametrize("mode", ["default", "json"])
async def test_a_huge_http_result_is_refused_unread_and_the_session_serves_on(mode: str) -> None:
    with http_server(TOKEN, json_response=mode == "json") as url:
        spec = McpServerSpec(url=url, headers={"X-Keel-Token": "BOUNDS_TOKEN"})
        servers = McpServers(lambda: {"web": spec}, environ={"BOUNDS_TOKEN": TOKEN})
        try:
            began = time.monotonic()
            with pytest.raises(ApplicationError) as refused:
                await servers.call("web", "huge", {"kilobytes": 64 * 1024}, 120)
            seconds = time.monotonic() - began
            after, _ = await servers.call("web", "word_stats", {"text": "still here"}, 30)
        finally:
            await servers.close()

    assert refused.value.type == TOOL_RESULT_TOO_LARGE
    assert refused.value.non_retryable  # the same call would get the same flood
    assert f"over the {RESPONSE_LIMIT_BYTES}-byte response limit" in refused.value.message
    assert seconds < 20  # 64 MiB read whole takes seconds more and 640 MiB (docs/extending.md)
    assert after.structured_content == {"words": 2, "longest": "still"}
    assert servers.starts == {"web": 1}  # the session was not broken by the refusal


async def test_a_body_without_a_length_is_read_no_further_than_the_limit() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100_000):  # 70 MB, no Content-Length
            sent += 1
            yield b"z" * 700

    transport = BoundedHttp("http://127.0.0.1:1/mcp", limit=1024)
    body = await transport._bounded_body(httpx2.Response(200, content=endless()))
    assert body is None
    assert sent <= 3
    small = httpx2.Response(200, content=b'{"jsonrpc":"2.0","id":1,"result":{}}')
    assert await transport._bounded_body(small) == b'{"jsonrpc":"2.0","id":1,"result":{}}'


async def test_an_sse_event_over_the_limit_is_a_result_too_large_not_a_dropped_stream() -> None:
    writer, reader = create_context_streams[SessionMessage | Exception](1)
    transport = BoundedHttp("http://127.0.0.1:1/mcp", limit=1024)
    async with writer, reader:
        # The words httpx2's SSEError uses, as the SDK passes them on (mcp 2.3.0).
        await transport._resolve_abandoned_request(
            writer, 7, "SSE stream failed: Server-sent event exceeded the 1024 byte limit."
        )
        message = await reader.receive()
    assert isinstance(message, SessionMessage)
    assert isinstance(message.message, types.JSONRPCError)
    assert (message.message.id, message.message.error.code) == (7, LINE_TOO_LONG)
    assert transport.refused == 1
