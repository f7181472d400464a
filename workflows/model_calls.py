"""Model calls from workflow code: the gateway activity, re-asks, and usage counting."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.llm.activities import LLMActivities
    from keel.graphs.policies import HEARTBEAT_TIMEOUT
    from keel.payloads.errors import (
        BUDGET_EXHAUSTED,
        CIRCUIT_OPEN,
        SCHEMA_VIOLATION,
        TENANT_BUDGET_EXHAUSTED,
    )
    from keel.payloads.llm import (
        Budget,
        BudgetLeft,
        Fallback,
        LLMRequest,
        LLMResult,
        ModelChoice,
        Usage,
    )
    from workflows.live import LiveChannel
    from workflows.recorded import Recorded

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class _Limits:
    max_tokens: int
    start_to_close: timedelta
    retry: RetryPolicy
    passage_ids: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    prompt_id: str = ""


class BudgetExhausted(Exception):
    """No model call fits in what the run has left; the flow takes its degrade path.

    `tenant`: it was the tenant's day budget (contracts/tenants.toml), not the run's own.
    """

    def __init__(self, message: str, *, tenant: bool = False) -> None:
        super().__init__(message)
        self.tenant = tenant


class ModelCaller:
    """One per workflow run; its counters are workflow state, so they replay exactly."""

    def __init__(
        self,
        choice: ModelChoice,
        task_queue: str,
        max_reasks: int,
        budget: Budget | None = None,
        fallbacks: list[ModelChoice] | None = None,
        call_offset: int = 0,
        live: LiveChannel | None = None,
        stream_tokens: bool = False,
        recorded: Recorded | None = None,
    ) -> None:
        # Where re-asks and fallbacks are told as they happen, and whether the model's
        # output streams there too (token deltas are signals: a run asks for them).
        self.live = live
        self.stream_tokens = stream_tokens
        # A forked child's calls before the fork point, answered from the original.
        self._recorded = recorded or Recorded()
        # Calls a node made in earlier runs of the same task (a writer's revision round).
        self._call_offset = call_offset
        self._budget = budget or Budget()
        # The chain: the first model, then its fallbacks. A switch lasts for the run.
        self._chain = [choice, *(fallbacks or [])]
        self._current = 0
        self.fallbacks: list[Fallback] = []
        self._task_queue = task_queue
        self._max_reasks = max_reasks
        self._calls: dict[str, int] = {}
        self.usage = Usage()
        self.reasks = 0
        self.prompts: dict[str, str] = {}
        self.last: LLMResult | None = None

    async def ask(
        self,
        node: str,
        output: type[M],
        variables: dict[str, str],
        *,
        max_tokens: int,
        start_to_close: timedelta,
        retry: RetryPolicy,
        passage_ids: list[str] | None = None,
        choices: dict[str, list[str]] | None = None,
        prompt_id: str | None = None,
    ) -> M | None:
        """Call the model; re-ask with the validation error, apart from transport retries.

        Returns None when the re-ask limit is reached, so the caller takes the node's
        failure edge. Every call counts in `usage`, rejected ones included. A provider
        failure that retries cannot fix moves the run to the next model of its chain.
        """
        limits = _Limits(
            max_tokens, start_to_close, retry, passage_ids or [], choices or {}, prompt_id or node
        )
        while True:
            try:
                return await self._ask_current(node, output, variables, limits)
            except ActivityError as err:
                # A cancellation is the run's, not the model's: no fallback can answer it.
                if is_cancelled_exception(err) or self._current + 1 >= len(self._chain):
                    raise
                failed, self._current = self._chain[self._current], self._current + 1
                reason = _reason(err)
                if isinstance(err.cause, ApplicationError) and err.cause.type == CIRCUIT_OPEN:
                    self._tell(f"breaker refused {failed.label}: {err.cause.message}", node)
                self._tell(
                    f"fallback {failed.label} -> {self._chain[self._current].label}: {reason}",
                    node,
                )
                self.fallbacks.append(
                    Fallback(
                        node=node,
                        from_model=failed.label,
                        to_model=self._chain[self._current].label,
                        reason=reason,
                    )
                )
                workflow.logger.warning(
                    "falling back from %s at %s: %s", failed.label, node, reason
                )

    async def _ask_current(
        self, node: str, output: type[M], variables: dict[str, str], limits: _Limits
    ) -> M | None:
        error: str | None = None
        stream_call = ""
        for reask in range(self._max_reasks + 1):
            index = self._calls.get(node, self._call_offset)
            if self.stream_tokens and self.live is not None and not stream_call:
                # One key for the call and its re-asks: a re-ask replaces the rejected text.
                stream_call = f"{node}#{index + 1}"
            self._calls[node] = index + 1
            if reask:
                self.reasks += 1
            left = self._budget_left(node)
            request = LLMRequest(
                node=node,
                call_index=index,
                choice=self._chain[self._current],
                prompt_id=limits.prompt_id,
                variables=variables,
                output_schema=output.__name__,
                reask_error=error,
                max_tokens=limits.max_tokens,
                budget=left,
                passage_ids=limits.passage_ids,
                choices=limits.choices,
                stream_call=stream_call,
            )
            summary = f"{node} #{index + 1}" + (f" (re-ask {reask})" if reask else "")
            try:
                result = await self._complete(request, summary, limits)
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == SCHEMA_VIOLATION:
                    error = cause.message
                    if len(cause.details) > 1:
                        self.usage = self.usage.add(Usage.model_validate(cause.details[1]))
                    workflow.logger.info("re-asking %s after schema violation: %s", node, error)
                    self._tell(f"re-ask {node}: {error}"[:300], node)
                    continue
                if isinstance(cause, ApplicationError) and cause.type in (
                    BUDGET_EXHAUSTED,
                    TENANT_BUDGET_EXHAUSTED,
                ):
                    tenant = cause.type == TENANT_BUDGET_EXHAUSTED
                    raise BudgetExhausted(cause.message, tenant=tenant) from err
                raise
            self.last = result
            if stream_call and self.live is not None:
                self.live.done(stream_call, node, json.dumps(result.output))
            self.prompts[result.prompt_id] = result.prompt_hash
            self.usage = self.usage.add(result.usage)
            return output.model_validate(result.output)
        return None

    async def _complete(self, request: LLMRequest, summary: str, limits: _Limits) -> LLMResult:
        def complete() -> Awaitable[LLMResult]:
            return workflow.execute_activity_method(
                LLMActivities.complete,
                request,
                task_queue=self._task_queue,
                start_to_close_timeout=limits.start_to_close,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=limits.retry,
                summary=summary,
            )

        return await self._recorded.or_run("complete_llm", summary, LLMResult, complete)

    def _tell(self, text: str, node: str) -> None:
        if self.live is not None:
            self.live.step(text, node)

    def spend(self, usage: Usage) -> None:
        """Count what is not a model call (a priced tool) against the same budget."""
        self.usage = self.usage.add(usage)

    def cost_left(self) -> float | None:
        if self._budget.max_cost_usd is None:
            return None
        return round(self._budget.max_cost_usd - self.usage.cost_usd, 9)

    @property
    def choice(self) -> ModelChoice:
        return self._chain[self._current]

    def _budget_left(self, node: str) -> BudgetLeft | None:
        budget = self._budget
        if budget.deadline is not None and workflow.now() >= budget.deadline:
            raise BudgetExhausted(f"deadline {budget.deadline.isoformat()} passed before {node}")
        if budget.max_tokens is None and budget.max_cost_usd is None:
            return None
        left = budget.left(self.usage)
        if (left.tokens is not None and left.tokens <= 0) or (
            left.cost_usd is not None and left.cost_usd <= 0
        ):
            raise BudgetExhausted(f"budget spent before {node}: {self.usage.tokens} tokens")
        return left


def _reason(error: ActivityError) -> str:
    """Why a model was given up: the failure's stable type and its message."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"[:300]
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"[:300]
    return str(error)[:300]
