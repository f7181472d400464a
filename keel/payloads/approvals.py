"""A tool call that waits for a person: bound to its exact arguments, decided once.

A tool whose contract says `approval = true` does not run when the agent proposes it.
The run shows the call (its number in the run, the tool, its arguments and their
digest) and waits. A decision names the call and the digest: approving a call whose
arguments changed needs a new decision, and a call is decided once, by a person or,
at its deadline, by the contract's default. A decision that comes twice, late, or for
another call is refused with the reason, and nothing runs twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Verdict = Literal["approve", "reject"]


def call_digest(tool: str, arguments: Mapping[str, Any]) -> str:
    """sha256 of the call as canonical JSON: the same call, the same digest, anywhere."""
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class PendingCall(BaseModel):
    """The call a run waits on, as `client.py approvals` shows it."""

    call: int = Field(ge=1, description="the run's n-th call that needs approval")
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    digest: str
    turn: int = 0
    deadline: datetime
    default: Verdict = Field(description="what the deadline decides")


class CallDecision(BaseModel):
    """A person's decision on one call, naming what they saw."""

    call: int = Field(ge=1)
    digest: str = Field(
        min_length=8, max_length=64, description="the call's digest, or its first 8+ characters"
    )
    decision: Verdict
    by: str = Field(default="", max_length=100)
    reason: str = Field(default="", max_length=500)


class DecidedCall(BaseModel):
    """A call's decision as the run recorded it; `by` is empty for the deadline's default."""

    call: int
    tool: str
    digest: str
    decision: Verdict
    by: str = ""
    reason: str = ""


def refusal(
    pending: PendingCall | None, decided: Sequence[DecidedCall], decision: CallDecision
) -> str | None:
    """Why a decision cannot be taken, or None: the rules above, as one line each."""
    earlier = next((d for d in decided if d.call == decision.call), None)
    if earlier is not None:
        who = earlier.by or "its deadline"
        return (
            f"call {decision.call} ({earlier.tool}) was already decided: {earlier.decision}"
            f" by {who}; nothing runs twice"
        )
    if pending is None:
        return f"no call of this run awaits approval (asked for call {decision.call})"
    if pending.call != decision.call:
        return (
            f"call {decision.call} is not awaiting approval; call {pending.call} is"
            f" ({pending.tool})"
        )
    if not pending.digest.startswith(decision.digest.lower()):
        return (
            f"the decision names other arguments (digest {decision.digest[:12]}); call"
            f" {pending.call} is {pending.tool} with digest {pending.digest[:12]}:"
            " decide on what `client.py approvals` shows"
        )
    return None
