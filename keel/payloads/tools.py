"""Tool calls: what an agent asks a tool to do, and what it got back."""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue

from keel.payloads.clearance import SecurityLevel

# A model's proposal carries strings and whole numbers (keel/payloads/agents.py AgentTurn); a
# flow of the user's may pass any JSON an MCP or Python tool's schema takes.
ToolArguments = dict[str, JsonValue]


class ToolInvocation(BaseModel):
    """One routed tool call; the key makes a retried side effect happen once."""

    tool: str
    arguments: ToolArguments = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=8, max_length=200)
    namespaces: list[str] = Field(default_factory=list, description="what a search may read")
    clearance: SecurityLevel = "public"

    def integer(self, name: str, default: int = 0) -> int:
        """A whole-number argument (the schema has checked it is one)."""
        value = self.arguments.get(name, default)
        return value if isinstance(value, int) else int(str(value))


class ToolOutcome(BaseModel):
    """A short preview for the model; passages themselves stay in the store, by id."""

    tool: str
    text: str = Field(max_length=2000)
    passage_ids: list[str] = Field(default_factory=list)
    record_id: int | None = Field(default=None, description="what a compensation would undo")
    replayed: bool = False
    is_error: bool = Field(
        default=False, description="the tool's own error (MCP isError): an answer, not a failure"
    )
