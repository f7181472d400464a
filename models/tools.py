"""Tool calls: what an agent asks a tool to do, and what it got back."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.contracts import SecurityLevel


class ToolInvocation(BaseModel):
    """One routed tool call; the key makes a retried side effect happen once."""

    tool: str
    arguments: dict[str, str | int] = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=8, max_length=200)
    namespaces: list[str] = Field(default_factory=list, description="what a search may read")
    clearance: SecurityLevel = "public"


class ToolOutcome(BaseModel):
    """A short preview for the model; passages themselves stay in the store, by id."""

    tool: str
    text: str = Field(max_length=2000)
    passage_ids: list[str] = Field(default_factory=list)
    record_id: int | None = Field(default=None, description="what a compensation would undo")
    replayed: bool = False
