"""The gateway as an activity, so every model call is retried, timed out and recorded."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.breakers import BREAKER_FAILURES, Breakers
from activities.llm.gateway import LLMGateway
from models.errors import CIRCUIT_OPEN
from models.llm import LLMRequest, LLMResult


class LLMActivities:
    def __init__(
        self, gateway: LLMGateway, executor: ThreadPoolExecutor, breakers: Breakers | None = None
    ) -> None:
        self._gateway = gateway
        self._executor = executor
        self._breakers = breakers

    @activity.defn(name="complete_llm")
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Ask the model's breaker, call on the thread pool, tell the breaker how it went.

        The model runs on a thread pool sized to its concurrency, so a CPU-bound
        local model never stalls the worker's event loop. An open breaker fails the
        call at once, without touching the provider: the fallback chain moves on.
        """
        name = request.choice.label
        breakers = (
            self._breakers
            if self._breakers and self._breakers.guards(request.choice.provider)
            else None
        )
        before = "closed"
        if breakers is not None:
            permission = await breakers.acquire(name)
            if not permission.allowed:
                raise ApplicationError(
                    f"circuit open for {name}: {permission.reason}",
                    type=CIRCUIT_OPEN,
                    non_retryable=True,
                )
            before = permission.state
        loop = asyncio.get_running_loop()
        # The log context (workflow id, activity, attempt) goes along into the thread.
        in_context = functools.partial(
            contextvars.copy_context().run, self._gateway.complete, request
        )
        try:
            result = await loop.run_in_executor(self._executor, in_context)
        except ApplicationError as error:
            if breakers is not None:
                await breakers.record(name, error.type in BREAKER_FAILURES, before)
            raise
        if breakers is not None:
            await breakers.record(name, False, before)
        return result
