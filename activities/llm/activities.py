"""The gateway as an activity, so every model call is retried, timed out and recorded."""

from __future__ import annotations

from temporalio import activity

from activities.llm.gateway import LLMGateway
from models.llm import LLMRequest, LLMResult


class LLMActivities:
    def __init__(self, gateway: LLMGateway) -> None:
        self._gateway = gateway

    # Synchronous: the local model is CPU-bound, so it runs on the worker's thread
    # pool instead of stalling the event loop.
    @activity.defn(name="complete_llm")
    def complete(self, request: LLMRequest) -> LLMResult:
        return self._gateway.complete(request)
