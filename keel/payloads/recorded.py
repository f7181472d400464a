"""Recorded activity outcomes that a forked team hands to the children it starts again.

A team forked at a child's later call (a researcher's second turn) is reset to the
step that started that child, so the child starts again. Its activities before the
fork point come from the original child's history instead of running: the model is
not asked again, nothing is billed twice, and the fork differs from the original only
from the chosen call on. A child started in the same step gets all of its outcomes
back and makes no call at all.

The worker reads them (activities/fork/) when the reset team starts the child; the
reset's reason, written by `client.py fork`, names the call.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RecordedCall(BaseModel):
    """One activity of the original child: what it was, and how it ended."""

    activity: str = Field(description="the activity type, `complete_llm` or `call_tool`")
    summary: str = Field(description="the activity's summary, which names the call")
    result: Any = None
    failure: dict[str, Any] | None = Field(
        default=None,
        description="the activity's failure as a Temporal Failure (JSON), its payloads decoded",
    )


class SeedsRequest(BaseModel):
    """Which child of a forked team is about to start again."""

    child_workflow_id: str
