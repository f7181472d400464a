"""What a model call passes before it is sent, and reports once it has answered.

The gateway knows a call's size only once its prompt is rendered and its answer capped
to the run's budget; a gate (the tenant's day budget, the provider's rate limit) then
admits it, possibly with fewer answer tokens, makes it wait, or refuses it with a typed
error, and is told what the call used, so what it holds for the call can be let go.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.prices import Price
from keel.payloads.llm import Provider, Usage


@dataclass(frozen=True)
class GatedCall:
    """One call as the gates see it, its tokens estimated before it is sent."""

    call_id: str
    tenant: str
    provider: Provider
    model: str
    prompt_tokens: int
    max_tokens: int
    price: Price

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_tokens

    def capped(self, max_tokens: int) -> GatedCall:
        return replace(self, max_tokens=min(self.max_tokens, max_tokens))


class CallGate(Protocol):
    async def admit(self, call: GatedCall) -> GatedCall:
        """The call as it may go (perhaps with fewer answer tokens), once it may go."""
        ...

    async def settle(
        self, call: GatedCall, usage: Usage | None, error: ApplicationError | None
    ) -> None:
        """What the call used (None: it was never answered), and the error it got, if any.
        Never raises: the provider has answered, or will not."""
        ...


def call_id() -> str:
    """The attempt's own id: a retry is a new call, a replayed update the same one."""
    if not activity.in_activity():
        return "outside-an-activity"
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"


def run_tenant(default: str) -> str:
    """The run's tenant: the fairness key its priority carries (`client.py --tenant`)."""
    if not activity.in_activity():
        return default
    return activity.info().priority.fairness_key or default
