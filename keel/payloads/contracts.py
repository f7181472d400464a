"""The shapes of the contract files in contracts/: agents, rubrics, routes (tools: tool_specs.py).

Workflows receive these as a recorded snapshot (an activity result), so a run
keeps routing on the contracts it started with even if the files change.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from keel.payloads.clearance import SecurityLevel
from keel.payloads.llm import ModelChoice, Provider
from keel.payloads.tool_specs import McpServerSpec, ToolSpec

# What a message to an agent run that is still working does (docs/agents.md).
MessagePolicy = Literal["queue", "interrupt", "reject"]
Language = Literal["en", "ko"]
FlowName = Literal["research", "report", "incident", "direct", "agent"]


Name = str  # lower-case identifiers; checked where they are keys


def parse_model(spec: str) -> ModelChoice:
    """`provider/model`, as agents.toml and the CLI write a model."""
    provider, sep, model = spec.partition("/")
    if not sep or not model:
        raise ValueError(f"model {spec!r} is not written provider/model")
    return ModelChoice.model_validate({"provider": provider, "model": model})


class AgentSpec(BaseModel):
    """One agent: its role, prompts, model chain, tools and the schema of its result."""

    role: str = Field(min_length=1)
    description: str = Field(min_length=1)
    turn_prompt: str | None = Field(
        default=None, description="prompt for tool-calling turns; none when the agent has no tools"
    )
    final_prompt: str = Field(min_length=1)
    output_schema: str = Field(min_length=1)
    models: list[str] = Field(min_length=1, description="the chain, tried in order")
    tools: list[str] = Field(default_factory=list, description="the allow-list")
    scopes: list[str] = Field(default_factory=list, description="permissions granted")
    max_turns: int = Field(default=4, ge=1, le=200)
    seed_tool: str | None = Field(
        default=None,
        description="a search called with the task before the first turn, so the model"
        " starts from evidence rather than from an empty page",
    )
    max_tokens: int = Field(default=256, ge=16, le=8192)
    on_message: MessagePolicy = Field(
        default="queue",
        description="a message to a run still working: `queue` answers it after the current"
        " request, in order; `interrupt` abandons the current request (its model and tool"
        " calls are cancelled) and starts again with the message; `reject` refuses it",
    )

    @field_validator("models")
    @classmethod
    def _models_parse(cls, models: list[str]) -> list[str]:
        for spec in models:
            parse_model(spec)
        return models

    @model_validator(mode="after")
    def _turns_need_a_prompt(self) -> AgentSpec:
        if self.tools and not self.turn_prompt:
            raise ValueError("an agent with tools needs a turn_prompt")
        if self.seed_tool is not None and self.seed_tool not in self.tools:
            raise ValueError(f"seed_tool {self.seed_tool!r} is not one of the agent's tools")
        return self

    @property
    def chain(self) -> list[ModelChoice]:
        return [parse_model(spec) for spec in self.models]


class Criterion(BaseModel):
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    weight: float = Field(gt=0)


class Rubric(BaseModel):
    """Criteria scored 1 to 5; the weighted mean must reach the threshold to pass."""

    description: str = ""
    criteria: list[Criterion] = Field(min_length=1, max_length=8)
    pass_threshold: float = Field(ge=1, le=5)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, criteria: list[Criterion]) -> list[Criterion]:
        names = [c.name for c in criteria]
        if len(set(names)) != len(names):
            raise ValueError("criterion names must be unique")
        return criteria

    @property
    def prompt_criteria(self) -> str:
        """The criteria as a reviewer's prompt lists them, in research and the team alike."""
        return "\n".join(f"- {c.name} (weight {c.weight}): {c.description}" for c in self.criteria)

    def weighted_score(self, scores: dict[str, int]) -> float:
        """Missing criteria count as 1, the lowest score: a skipped criterion never helps."""
        total = sum(c.weight for c in self.criteria)
        earned = sum(c.weight * scores.get(c.name, 1) for c in self.criteria)
        return round(earned / total, 3)


class IntentRoute(BaseModel):
    """An intent: the flow it starts and the rules that recognise it before any model."""

    flow: FlowName
    description: str = Field(min_length=1)
    allowed: bool = True
    agent: str | None = Field(
        default=None, description='for flow = "agent": the agents.toml agent that takes it'
    )
    max_words: int | None = Field(
        default=None, ge=1, description="rules apply only to requests this short"
    )
    keywords: list[str] = Field(default_factory=list, description="whole words or phrases")
    patterns: list[str] = Field(default_factory=list, description="regular expressions")

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"pattern {pattern!r}: {err}") from err
        return patterns

    @model_validator(mode="after")
    def _agent_named(self) -> IntentRoute:
        if (self.flow == "agent") != (self.agent is not None):
            raise ValueError('an intent names an agent exactly when its flow is "agent"')
        return self


class DataNamespace(BaseModel):
    """A corpus namespace, and who may read it."""

    language: Language
    version: str = Field(min_length=1)
    security: SecurityLevel = "public"
    topic: str = Field(default="general", min_length=1)
    description: str = ""


class Routes(BaseModel):
    """Intents in rule order (first match wins) and the data namespaces."""

    intents: dict[str, IntentRoute] = Field(min_length=1)
    namespaces: dict[str, DataNamespace] = Field(min_length=1)
    refusal: str = Field(min_length=1, description="what a refused request is told")


def _local_only() -> list[Provider]:
    return ["local"]


class FlowQuality(BaseModel):
    """How one flow treats drafts: check rewrites, and when to fall back to an extract."""

    max_rewrites: int = Field(
        default=2, ge=0, le=10, description="writes sent back by the checks before giving up"
    )
    extractive_fallback: list[Provider] = Field(
        default_factory=lambda: _local_only(),
        description="providers whose runs deliver an extract when no draft passes the checks",
    )
    rubric: str = Field(default="answer", description="the rubric the review is scored on")


class Decoding(BaseModel):
    """Sampling settings for a provider's model; recorded with every call's result."""

    temperature: float = Field(default=0.2, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=40, ge=0)
    repeat_penalty: float = Field(default=1.0, ge=1, le=2)
    frequency_penalty: float = Field(default=0.0, ge=0, le=2)


class Quality(BaseModel):
    """contracts/quality.toml: per-flow draft handling and per-provider decoding."""

    flows: dict[str, FlowQuality] = Field(default_factory=dict)
    decoding: dict[str, Decoding] = Field(default_factory=dict)

    def flow(self, name: str) -> FlowQuality:
        return self.flows.get(name) or FlowQuality()


class ContractSnapshot(BaseModel):
    """All contracts a run routes on, with each file's version and content hash."""

    agents: dict[str, AgentSpec]
    tools: dict[str, ToolSpec]
    rubrics: dict[str, Rubric]
    routes: Routes
    versions: dict[str, str] = Field(description="file -> 'version@sha256 prefix'")
    # A default, so snapshots recorded before the file existed still parse on replay.
    quality: Quality = Field(default_factory=Quality)
    # Defaults too: snapshots recorded before MCP servers existed parse on replay.
    servers: dict[str, McpServerSpec] = Field(
        default_factory=dict, description="tools.toml [servers]: the MCP servers"
    )
    discovered: dict[str, list[str]] = Field(
        default_factory=dict,
        description="server -> every tool it listed when the contracts loaded; one the"
        " contracts do not name cannot be called",
    )
