"""A worker's MCP sessions end with it, once their breakers have heard the last outcomes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from temporalio.plugin import SimplePlugin

from activities.tools.mcp_servers import McpServers

# How long a stopping worker waits to tell breakers the tool successes it holds.
DRAIN_SECONDS = 5.0


def mcp_sessions_closed(
    servers: McpServers, drain: Callable[[], Awaitable[None]] | None = None
) -> SimplePlugin:
    """The worker's MCP sessions end with it: its stdio servers stop when it stops,
    after `drain` (tool outcomes still to tell their breakers)."""

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        try:
            yield
        finally:
            if drain is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(drain(), DRAIN_SECONDS)
            await servers.close()

    return SimplePlugin("keel.mcp-sessions", run_context=running)
