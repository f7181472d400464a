"""The LLM gateway's request and result."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Provider = Literal["local", "scripted", "openai", "anthropic"]


class ModelChoice(BaseModel):
    """Which model a flow uses; carried in workflow inputs, so no secrets here."""

    provider: Provider = "local"
    model: str = Field(
        default="smollm2-135m-instruct",
        description="model name; for the scripted provider, the script's file stem",
    )
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


class BudgetLeft(BaseModel):
    """What one call may still spend; None means no limit."""

    tokens: int | None = None
    cost_usd: float | None = None


class Budget(BaseModel):
    """Limits a run carries, and hands on to its children as what is left."""

    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    deadline: datetime | None = None

    def left(self, used: Usage) -> BudgetLeft:
        return BudgetLeft(
            tokens=None if self.max_tokens is None else self.max_tokens - used.tokens,
            cost_usd=None
            if self.max_cost_usd is None
            else round(self.max_cost_usd - used.cost_usd, 9),
        )

    def for_child(self, used: Usage) -> Budget:
        """A child can never spend more than its parent has left."""
        left = self.left(used)
        return Budget(
            max_tokens=max(left.tokens, 1) if left.tokens is not None else None,
            max_cost_usd=max(left.cost_usd, 1e-9) if left.cost_usd is not None else None,
            deadline=self.deadline,
        )

    def share(self, used: Usage, parts: int) -> Budget:
        """One of `parts` children running at once: together they fit in what is left."""
        child = self.for_child(used)
        return Budget(
            max_tokens=max(child.max_tokens // parts, 1) if child.max_tokens is not None else None,
            max_cost_usd=max(child.max_cost_usd / parts, 1e-9)
            if child.max_cost_usd is not None
            else None,
            deadline=child.deadline,
        )


class Fallback(BaseModel):
    """A switch to the next model of the chain, and why."""

    node: str
    from_model: str
    to_model: str
    reason: str


class LLMRequest(BaseModel):
    """One model call whose output must match a named schema."""

    node: str = Field(description="graph node making the call, for scripts and logs")
    call_index: int = Field(default=0, ge=0, description="how many times the node ran before")
    choice: ModelChoice
    prompt_id: str = Field(description="template in contracts/prompts.toml")
    variables: dict[str, str] = Field(default_factory=dict)
    output_schema: str = Field(description="name of a registered output model")
    reask_error: str | None = Field(
        default=None, description="why the previous answer broke the schema, for a re-ask"
    )
    max_tokens: int = Field(default=384, ge=1, le=8192)
    budget: BudgetLeft | None = Field(
        default=None, description="what the run may still spend; the call is capped to it"
    )
    passage_ids: list[str] = Field(
        default_factory=list,
        description="passages the worker renders into $passages, kept out of the history",
    )
    choices: dict[str, list[str]] = Field(
        default_factory=dict,
        description="`Model.field` -> allowed values, narrowing the output schema",
    )
    stream_call: str = Field(
        default="",
        description="publish the output as it is written to the run's live channel under"
        " this key; empty: not at all (each batch of deltas is a signal in the history)",
    )


class Usage(BaseModel):
    """Tokens and time spent, summed over calls."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def add(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            latency_ms=self.latency_ms + other.latency_ms,
            cost_usd=round(self.cost_usd + other.cost_usd, 9),
        )


class LLMResult(BaseModel):
    """Validated output of one call, already checked against its schema."""

    output: dict[str, Any]
    provider: Provider
    model: str
    usage: Usage
    prompt_id: str = ""
    prompt_hash: str = Field(default="", description="hash of the template version used")
    decoding: dict[str, float] = Field(
        default_factory=dict, description="sampling settings the model ran with, when known"
    )
