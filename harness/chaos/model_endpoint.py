"""A scripted OpenAI-compatible endpoint that misbehaves on cue.

Workers reach it through the `openai` provider (`--openai-base-url`), so every
model call crosses a real HTTP connection that the suite can refuse (429 with
Retry-After, 500), hang (never answer), cut mid-answer, or slow down. Answers
come from `chaos.script`, a pure function of the request. The endpoint keeps a
log of every call (node, arrival, end, how it ended, when the client gave up on
it) so faults can be timed to a call in flight and recovery can be measured.

It is a plain ASGI app on uvicorn, run in the suite's own event loop, so a fault
is armed without any cross-process signalling.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.types import Message, Receive, Scope, Send

from harness.chaos.script import Script, ScriptedAnswer, UnknownPrompt

FaultKind = Literal["rate_limit", "error", "hang", "close", "slow"]
RETRY_AFTER_SECONDS = 1
STREAM_CHUNK_WORDS = 4


@dataclass
class ModelFault:
    kind: FaultKind
    seconds: float = 0.0  # slow: the delay before answering


@dataclass
class CallRecord:
    number: int
    node: str
    arrived: float
    stream: bool
    fault: FaultKind | None = None
    finished: float | None = None
    outcome: str = "in flight"
    # When the client closed the connection before an answer (a cancelled call).
    abandoned: float | None = None


@dataclass
class _Armed:
    next_calls: deque[ModelFault] = field(default_factory=deque)
    on_call: dict[int, ModelFault] = field(default_factory=dict)


class ScriptedEndpoint:
    def __init__(self, script: Script | None = None) -> None:
        self._script = script or Script()
        self._armed = _Armed()
        self.calls: list[CallRecord] = []
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- control -------------------------------------------------------------------------

    def arm(self, fault: ModelFault, *, on_call: int | None = None) -> None:
        """The next call gets `fault`, or call number `on_call` (counted from 1) does."""
        if on_call is None:
            self._armed.next_calls.append(fault)
        else:
            self._armed.on_call[on_call] = fault

    def disarm(self) -> None:
        self._armed = _Armed()

    def in_flight(self) -> list[CallRecord]:
        return [c for c in self.calls if c.finished is None]

    async def wait_for_call(
        self, number: int | None = None, *, after: float | None = None, limit: float = 600
    ) -> CallRecord:
        """Call `number` once it arrived, or the first call arriving after `after`."""

        def found() -> CallRecord | None:
            for call in self.calls:
                if (number is not None and call.number == number) or (
                    after is not None and call.arrived >= after
                ):
                    return call
            return None

        async with asyncio.timeout(limit), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        record = found()
        assert record is not None
        return record

    async def wait_abandoned(self, record: CallRecord, limit: float) -> float | None:
        """When the client gave the call up (closed its connection), or None."""
        try:
            async with asyncio.timeout(limit), self._changed:
                await self._changed.wait_for(
                    lambda: record.abandoned is not None or record.finished is not None
                )
        except TimeoutError:
            return None
        return record.abandoned

    async def start(self, port: int) -> None:
        self.port = port
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=port,
            # A scripted close raises mid-answer on purpose; uvicorn would log each one.
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await _json(send, 404, {"error": {"message": "not found"}})
            return
        try:
            request: dict[str, Any] = json.loads(body)
            messages = {m["role"]: m["content"] for m in request["messages"]}
            answer = self._script.answer(
                messages.get("system", ""), messages.get("user", ""), request.get("max_tokens")
            )
        except (ValueError, KeyError, TypeError, UnknownPrompt) as error:
            await _json(send, 400, {"error": {"message": str(error), "type": "invalid_request"}})
            return
        stream = bool(request.get("stream"))
        record = CallRecord(len(self.calls) + 1, answer.node, time.monotonic(), stream)
        fault = self._armed.on_call.pop(record.number, None)
        if fault is None and self._armed.next_calls:
            fault = self._armed.next_calls.popleft()
        record.fault = fault.kind if fault else None
        await self._record(record)
        try:
            record.outcome = await self._respond(
                record, fault, answer, request, stream, receive, send
            )
        finally:
            record.finished = time.monotonic()
            await self._notify()

    async def _record(self, record: CallRecord) -> None:
        self.calls.append(record)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _respond(
        self,
        record: CallRecord,
        fault: ModelFault | None,
        answer: ScriptedAnswer,
        request: dict[str, Any],
        stream: bool,
        receive: Receive,
        send: Send,
    ) -> str:
        kind = fault.kind if fault else None
        if kind == "rate_limit":
            await _json(
                send,
                429,
                {"error": {"message": "rate limited (scripted)", "type": "rate_limit"}},
                headers=((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),),
            )
            return "429"
        if kind == "error":
            await _json(send, 500, {"error": {"message": "scripted failure", "type": "server"}})
            return "500"
        if kind == "hang":
            await self._until_abandoned(record, receive, None)
            return "hung"
        if (
            kind == "slow"
            and fault is not None
            and await self._until_abandoned(record, receive, fault.seconds)
        ):
            return "abandoned"
        completion = _completion(answer, request)
        if kind == "close":
            data = json.dumps(completion).encode()
            await send(_start(200, "application/json", len(data)))
            await send(_body(data[: len(data) // 2], more=True))
            # Raising mid-body makes uvicorn drop the connection: the client reads a
            # response that stops half-way.
            record.outcome = "closed"
            raise ConnectionAbortedError("scripted close mid-answer")
        if stream:
            await self._stream(answer, request, send)
            return "streamed"
        await _json(send, 200, completion)
        return "answered"

    async def _until_abandoned(
        self, record: CallRecord, receive: Receive, seconds: float | None
    ) -> bool:
        """Wait (forever when `seconds` is None) unless the client hangs up first."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        waiters = [asyncio.ensure_future(disconnected()), asyncio.ensure_future(self._stop())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()
        if waiters[0] in done:
            record.abandoned = time.monotonic()
            return True
        return False

    async def _stop(self) -> None:
        await self._stopping.wait()

    async def _stream(self, answer: ScriptedAnswer, request: dict[str, Any], send: Send) -> None:
        """Server-sent events as OpenAI streams them: deltas, then usage, then [DONE]."""
        await send(_start(200, "text/event-stream", None))
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        words = answer.text.split(" ")
        pieces = [
            " ".join(words[i : i + STREAM_CHUNK_WORDS]) + (" " if i + 4 < len(words) else "")
            for i in range(0, len(words), STREAM_CHUNK_WORDS)
        ]
        base = {"id": ident, "object": "chat.completion.chunk", "created": created}
        base["model"] = request.get("model", "scripted")
        chunks: list[dict[str, Any]] = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ]
        chunks += [
            {**base, "choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces
        ]
        finish = "length" if answer.truncated else "stop"
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": _usage(answer)})
        for chunk in chunks:
            await send(_body(f"data: {json.dumps(chunk)}\n\n".encode(), more=True))
        await send(_body(b"data: [DONE]\n\n", more=False))


def _usage(answer: ScriptedAnswer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _completion(answer: ScriptedAnswer, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "length" if answer.truncated else "stop",
            }
        ],
        "usage": _usage(answer),
    }


def _start(
    status: int,
    content_type: str,
    length: int | None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> Message:
    sent = [(b"content-type", content_type.encode()), *headers]
    if length is not None:
        sent.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": sent}


def _body(data: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def _json(
    send: Send, status: int, content: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    data = json.dumps(content).encode()
    await send(_start(status, "application/json", len(data), headers))
    await send(_body(data, more=False))
