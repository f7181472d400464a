"""Side-effect calls a run made, and an operator's word on one whose outcome was lost.

A side effect either takes an idempotency key (the contract's `idempotency_key`), so
a retry is applied once by the tool, or runs at most once: the run records the call
before sending it and sends it on one attempt only. When that attempt's outcome is
unknown (the worker died, the call timed out), the run does not guess: it waits in
`needs_reconciliation` until an operator says what happened (`done`), asks to send
it again (`retry`), or has it undone by its compensation (`undo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

Resolution = Literal["done", "retry", "undo"]
CallStatus = Literal["in_flight", "done", "failed", "needs_reconciliation", "undone"]


class SideEffectCall(BaseModel):
    """One at-most-once call, recorded before it is sent; `client.py reconcile` shows it."""

    call: int = Field(ge=1, description="the run's n-th at-most-once call")
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    key: str = Field(description="the call's idempotency key (its run and step)")
    turn: int = 0
    status: CallStatus = "in_flight"
    attempts: int = Field(default=1, description="sends, counting each operator retry")
    error: str = Field(default="", description="why its outcome is unknown")
    resolutions: list[Resolution] = Field(default_factory=list)
    by: str = ""


class Reconciliation(BaseModel):
    """An operator's word on one call waiting for reconciliation."""

    call: int = Field(ge=1)
    resolution: Resolution
    by: str = Field(default="", max_length=100)
    reason: str = Field(default="", max_length=500)


def reconcile_refusal(calls: Sequence[SideEffectCall], decision: Reconciliation) -> str | None:
    """Why a reconciliation cannot be taken, or None; one line each."""
    found = next((c for c in calls if c.call == decision.call), None)
    if found is None:
        return (
            f"no at-most-once call {decision.call} in this run"
            f" (it has {len(calls)}; `client.py reconcile <run>` lists them)"
        )
    if found.status != "needs_reconciliation":
        return (
            f"call {found.call} ({found.tool}) is {found.status.replace('_', ' ')},"
            " not waiting for reconciliation"
        )
    return None
