"""The stdio transport with a limit on each line a server writes.

The SDK's `stdio_client` (mcp 2.3.0) gathers a line until its newline comes, however
long: a server that writes gigabytes without one makes the worker hold them all.
This is that client with a bounded reader. A line over `LINE_LIMIT_BYTES` is
dropped as it streams (the worker never holds more than the limit of it). If it
is the answer to one of our requests (its first bytes name the id), that request
gets a JSON-RPC error in its place and the session stays open; otherwise the
session ends, with `overflowed` set so the caller can say why.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    _WRITER_FLUSH_TIMEOUT,
    StdioServerParameters,
    _aclose_all,
    _create_platform_compatible_process,
    _drain_stdout,
    _get_executable_command,
    _parse_line,
    _stop_server_process,
    get_default_environment,
)
from mcp.shared.message import SessionMessage

# Twice the result limit (activities/tools/results.py): JSON escaping may double a
# result's size on the wire, and the result check after it still applies.
LINE_LIMIT_BYTES = 2 * 1024 * 1024
# The JSON-RPC error code keel gives a request whose answer was over the limit
# (in the range JSON-RPC leaves to implementations).
LINE_TOO_LONG = -32090
HEAD_BYTES = 256
_ID = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,100}")')


def answered_id(head: bytes) -> int | str | None:
    """The request id a message's first bytes name, if it is a response (no method)."""
    if b'"method"' in head:
        return None
    found = _ID.search(head)
    if found is None:
        return None
    raw = found.group(1)
    return int(raw) if raw[:1] != b'"' else raw[1:-1].decode("utf-8", "replace")


class LineSplitter:
    """Splits the server's bytes into lines, none held past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.head = b""
        self.skipping = False

    def feed(self, chunk: bytes) -> list[bytes | None]:
        """Whole lines; `None` where a line went over the limit (its head kept in `head`)."""
        out: list[bytes | None] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self.skipping and len(self.buffer) + len(piece) > self.limit:
                self.head = bytes((self.buffer + piece[:HEAD_BYTES])[:HEAD_BYTES])
                self.buffer.clear()
                self.skipping = True
                out.append(None)
            elif not self.skipping:
                self.buffer += piece
            if end < 0:
                return out
            if not self.skipping:
                out.append(bytes(self.buffer))
            self.buffer.clear()
            self.skipping = False
            start = end + 1


class BoundedStdio:
    """A `Client` transport: the server as a child process, its lines bounded."""

    def __init__(self, server: StdioServerParameters, limit: int = LINE_LIMIT_BYTES) -> None:
        self.server = server
        self.limit = limit
        self.overflowed = False
        # Our requests the server has not answered yet: told, if its stream breaks.
        self.waiting: set[int | str] = set()
        self._inner: Any = None

    async def __aenter__(self) -> TransportStreams:
        self._inner = bounded_stdio_client(self)
        streams: TransportStreams = await self._inner.__aenter__()
        return streams

    async def __aexit__(self, *exc: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc)
        return result

    def too_long(self, head: bytes) -> list[SessionMessage]:
        """Errors in place of the oversized message: for the request it answers, or, when
        its head names none, for every request still waiting (the session then ends)."""
        request = answered_id(head)
        if request is None:
            self.overflowed = True
        waiting = [request] if request is not None else sorted(self.waiting, key=str)
        message = f"the server's answer is over the {self.limit}-byte line limit"
        return [
            SessionMessage(
                types.JSONRPCError(
                    jsonrpc="2.0", id=r, error=types.ErrorData(code=LINE_TOO_LONG, message=message)
                )
            )
            for r in waiting
        ]

    async def deliver(
        self,
        send: Callable[[SessionMessage | Exception], Awaitable[None]],
        lines: LineSplitter,
        line: bytes | None,
    ) -> bool:
        """Sends one line on (errors in place of one too long); False: the session ends."""
        encoding, errors = self.server.encoding, self.server.encoding_error_handler
        messages: list[SessionMessage | Exception] = (
            [*self.too_long(lines.head)]
            if line is None
            else [_parse_line(line.decode(encoding, errors))]
        )
        for message in messages:
            self.received(message)
            await send(message)
        return not self.overflowed

    def sent(self, message: SessionMessage) -> None:
        if isinstance(message.message, types.JSONRPCRequest):
            self.waiting.add(message.message.id)

    def received(self, message: SessionMessage | Exception) -> None:
        if isinstance(message, SessionMessage) and isinstance(
            message.message, types.JSONRPCResponse | types.JSONRPCError
        ):
            self.waiting.discard(message.message.id)


async def _shutdown(process: Any, writer_done: anyio.Event, *streams: Any) -> None:
    """The SDK's order: stop traffic, let the writer flush, stop the server, close all."""
    read_stream, write_stream = streams[0], streams[1]
    read_stream.close()
    write_stream.close()
    with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
        await writer_done.wait()
    await _stop_server_process(process)
    await _aclose_all(*streams)
    await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def bounded_stdio_client(owner: BoundedStdio) -> AsyncGenerator[TransportStreams, None]:
    """`mcp.client.stdio.stdio_client`, reading at most `owner.limit` bytes of a line."""
    server = owner.server
    command = await _get_executable_command(server.command)
    process = await _create_platform_compatible_process(
        command=command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=sys.stderr,
        cwd=server.cwd,
    )
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()

    async def stdout_reader() -> None:
        assert process.stdout
        lines = LineSplitter(owner.limit)
        try:
            # Closed before the drain: a session ended here sees its stream end at once.
            async with read_writer:
                async for chunk in process.stdout:
                    for line in lines.feed(chunk):
                        if not await owner.deliver(read_writer.send, lines, line):
                            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError):
            pass  # the session or our shutdown closed a stream under the read
        finally:
            await _drain_stdout(process)

    async def stdin_writer() -> None:
        assert process.stdin
        try:
            async with write_reader:
                async for session_message in write_reader:
                    owner.sent(session_message)
                    json = session_message.message.model_dump_json(
                        by_alias=True, exclude_unset=True
                    )
                    await process.stdin.send((json + "\n").encode(server.encoding))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_writer.aclose()
        finally:
            writer_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await _shutdown(
                    process, writer_done, read_stream, write_stream, read_writer, write_reader
                )
            tg.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()
