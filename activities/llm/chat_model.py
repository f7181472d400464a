"""What a provider must do: turn one rendered call into text and token counts.

Every provider is awaited, so cancelling the awaiting activity stops the call
itself: a remote request is aborted with its connection, and a blocking model
(llama.cpp on the CPU, the scripted model) runs on a thread that is told to stop
and gives its slot back at its next token instead of finishing the answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

# Called with each piece of text as the model writes it; must be safe from any thread.
TextSink = Callable[[str], None]


@dataclass(frozen=True)
class ChatCall:
    model: str
    system: str
    user: str
    schema: dict[str, Any]
    max_tokens: int
    temperature: float
    node: str
    call_index: int
    on_text: TextSink | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    decoding: dict[str, float] = field(default_factory=dict)


class CallStopped(Exception):
    """A blocking model stopped early because its caller was cancelled."""


class ChatModel(Protocol):
    async def complete(self, call: ChatCall) -> Completion: ...


class BlockingChatModel(Protocol):
    def complete(self, call: ChatCall, stop: threading.Event) -> Completion:
        """Answer, checking `stop` often enough to end within a token or so."""
        ...


class InThread:
    """A blocking model on a thread pool sized to its concurrency.

    The pool keeps a CPU-bound model off the worker's event loop; on cancellation
    the model is told to stop, so the pool's thread is free for the next call.
    """

    def __init__(self, model: BlockingChatModel, executor: Executor) -> None:
        self.model = model
        self._executor = executor

    async def complete(self, call: ChatCall) -> Completion:
        stop = threading.Event()
        # The log context (workflow id, activity, attempt) goes along into the thread.
        run = functools.partial(contextvars.copy_context().run, self.model.complete, call, stop)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except asyncio.CancelledError:
            stop.set()
            raise
