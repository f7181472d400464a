"""The gateway as an activity, so every model call is retried, timed out and recorded."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import HEARTBEAT_EVERY_SECONDS, heartbeating
from activities.live import TokenPublisher, reset_reason, streams
from activities.llm.breakers import BREAKER_FAILURES, Breakers
from activities.llm.gateway import LLMGateway
from keel.infra.tracing import annotate
from keel.payloads.errors import CIRCUIT_OPEN
from keel.payloads.llm import LLMRequest, LLMResult, Usage


class LLMActivities:
    def __init__(
        self,
        gateway: LLMGateway,
        breakers: Breakers | None = None,
        heartbeat_every: float | None = HEARTBEAT_EVERY_SECONDS,
    ) -> None:
        self._gateway = gateway
        self._breakers = breakers
        self._heartbeat_every = heartbeat_every

    @activity.defn(name="complete_llm")
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Ask the model's breaker, call the model, tell the breaker how it went.

        The call heartbeats while it runs: a crashed worker is noticed within the
        heartbeat timeout, and a cancellation stops the model call and frees its
        slot at once. An open breaker fails the call without touching the provider:
        the fallback chain moves on.
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
                annotate(model=name, outcome=CIRCUIT_OPEN)
                raise ApplicationError(
                    f"circuit open for {name}: {permission.reason}",
                    type=CIRCUIT_OPEN,
                    non_retryable=True,
                )
            before = permission.state
        annotate(model=name, node=request.node, reask=request.reask_error is not None)
        try:
            result = await heartbeating(self._call(request), self._heartbeat_every)
        except ApplicationError as error:
            annotate(outcome=error.type or "error", **_usage(error))
            if breakers is not None:
                await breakers.record(name, error.type in BREAKER_FAILURES, before)
            raise
        if breakers is not None:
            await breakers.record(name, False, before)
        annotate(outcome="ok", **result.usage.model_dump(exclude={"calls", "latency_ms"}))
        return result

    async def _call(self, request: LLMRequest) -> LLMResult:
        """The gateway call, its output published as written when the run asked for it
        and a watcher shows it."""
        if not streams(request.stream_call, request.output_schema):
            return await self._gateway.complete(request)
        reason = reset_reason(request.reask_error)
        async with TokenPublisher(request.stream_call, request.node, reason) as live:
            return await self._gateway.complete(request, on_text=live.write)


def _usage(error: ApplicationError) -> dict[str, int | float]:
    """What a rejected answer cost, from its error's details (see gateway._rejected)."""
    if len(error.details) > 1 and isinstance(error.details[1], dict):
        return Usage.model_validate(error.details[1]).model_dump(exclude={"calls", "latency_ms"})
    return {}
