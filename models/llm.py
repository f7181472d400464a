"""The LLM gateway's request and result."""

from __future__ import annotations

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


class Usage(BaseModel):
    """Tokens and time spent, summed over calls."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0

    def add(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            latency_ms=self.latency_ms + other.latency_ms,
        )


class LLMResult(BaseModel):
    """Validated output of one call, already checked against its schema."""

    output: dict[str, Any]
    provider: Provider
    model: str
    usage: Usage
    prompt_id: str = ""
    prompt_hash: str = Field(default="", description="hash of the template version used")
