"""An MCP server over streamable HTTP, for the tool tests: the SDK's own server, real tools.

    python -m harness.testing.mcp_http_server PORT [--json]

With `--json` the server is made to answer with one JSON body per request; without
it, it may stream (SSE), though mcp 2.3.0 answers a plain call with JSON either way.

Every request must carry `X-Keel-Token` equal to $MCP_TEST_TOKEN (else 401), so a
test proves the worker sends the header it reads from its environment. `whoami`
echoes that header back, as a careless server might, to prove keel redacts it;
`lying_clock` breaks the output schema it lists. `post_header_notice` posts on the
exactly-once tests' notice board once per `Idempotency-Key` header.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.testing.notice_board import post_once_per_key

server = MCPServer("keel-test-http")


class WordStats(BaseModel):
    words: int
    longest: str


@server.tool()
def word_stats(text: str) -> WordStats:
    """Counts the words of a text and names the longest."""
    words = text.split()
    return WordStats(words=len(words), longest=max(words, key=len) if words else "")


@server.tool()
def whoami(ctx: Context) -> str:
    """Says which token the request came with."""
    request: Any = ctx.request_context.request
    return f"you sent X-Keel-Token: {request.headers.get('x-keel-token')}"


@server.tool()
async def post_header_notice(text: str, ctx: Context) -> str:
    """Posts a notice on the board, once per Idempotency-Key header of the request."""
    request: Any = ctx.request_context.request
    key = request.headers.get("idempotency-key")
    if not key:
        raise ToolError("the request carries no Idempotency-Key header")
    await post_once_per_key("post_header_notice", text, key)
    return f"posted: {text}"


@server.tool()
def fail_loudly(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"failing as asked: {reason}")


@server.tool()
def huge(kilobytes: int) -> str:
    """Returns that many kilobytes of text."""
    return "x" * (kilobytes * 1024)


@server.tool()
def lying_clock() -> CallToolResult:
    """Says the hour, as a number (it lies: it sends a word)."""
    return CallToolResult(content=[TextContent(text="late")], structured_content={"hour": "late"})


# Listed with an output schema its results break: a server that lies about its tool.
_lying = server._tool_manager.get_tool("lying_clock")
assert _lying is not None
_lying.fn_metadata.output_schema = {
    "type": "object",
    "properties": {"hour": {"type": "integer"}},
    "required": ["hour"],
}


class RequireToken:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-keel-token") != self.token:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"token required"})
            return
        await self.app(scope, receive, send)


def main() -> None:
    port = int(sys.argv[1])
    json_response = "--json" in sys.argv[2:]
    app = RequireToken(
        server.streamable_http_app(json_response=json_response), os.environ["MCP_TEST_TOKEN"]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
