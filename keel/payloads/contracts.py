"""The shapes of the contract files in contracts/: agents, tools, rubrics and routes.

Workflows receive these as a recorded snapshot (an activity result), so a run
keeps routing on the contracts it started with even if the files change.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from keel.payloads.llm import ModelChoice, Provider

SecurityLevel = Literal["public", "internal", "restricted"]
# What a message to an agent run that is still working does (docs/agents.md).
MessagePolicy = Literal["queue", "interrupt", "reject"]
Language = Literal["en", "ko"]
FlowName = Literal["research", "report", "incident", "direct", "agent"]

CLEARANCE_RANK: dict[SecurityLevel, int] = {"public": 0, "internal": 1, "restricted": 2}

Name = str  # lower-case identifiers; checked where they are keys


def may_read(clearance: SecurityLevel, level: SecurityLevel) -> bool:
    """A caller reads what is at or below its clearance, never above."""
    return CLEARANCE_RANK[clearance] >= CLEARANCE_RANK[level]


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


# A variable of the worker's environment, named in a contract so that its value (a
# token, a key) never is: upper case, as environment variables are written.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=100)]
# `package.module:function`, as a Python tool names its implementation.
PYTHON_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class McpServerSpec(BaseModel):
    """An MCP server the worker talks to: a command it starts (stdio) or a URL (HTTP).

    Secrets are named, never written: `env` and `headers` map what the server gets to
    the worker's environment variable that holds the value, read by the worker when
    it connects. The declaration is recorded in every run's contract snapshot, so it
    must hold nothing a history may not.
    """

    command: str | None = Field(default=None, description="the program to start (stdio)")
    args: list[str] = Field(default_factory=list, description="its command-line arguments")
    env: dict[str, EnvName] = Field(
        default_factory=dict,
        description="the server's variable -> the worker's variable it takes the value of",
    )
    url: str | None = Field(default=None, description="a streamable-HTTP endpoint instead")
    headers: dict[str, EnvName] = Field(
        default_factory=dict,
        description="an HTTP header -> the worker's variable holding its whole value",
    )
    startup_seconds: float = Field(
        default=20, gt=0, le=300, description="to start (or connect) and list the tools"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("a server has either a command (stdio) or a url (HTTP)")
        if self.url is not None:
            if self.env or self.args:
                raise ValueError("args and env are for a command; an HTTP server takes headers")
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url {self.url!r} is not an http(s) URL")
            if parts.username or parts.password or parts.query:
                raise ValueError(
                    "url carries credentials or a query; send them as headers from the"
                    " worker's environment instead"
                )
        elif self.headers:
            raise ValueError("headers are for an HTTP server; a command takes env")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"


class ToolSpec(BaseModel):
    """One tool: what it does, its arguments' JSON Schema, who may use it and at what cost.

    Built-in tools are implemented by keel. A tool with a `server` is that MCP server's
    tool, and one with `python` is a function of the user's: for both the worker fills
    in the schema (and the description, when the contract gives none) when the
    contracts load, so the snapshot a run records holds the exact schema it called.
    """

    description: str = Field(default="", description="what the model reads about the tool")
    capability: str = Field(default="", description="what a step needs; tools can share one")
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON Schema of the arguments object; an MCP or Python tool's, when"
        " given, replaces the discovered one (to narrow what an agent may send)",
    )
    scopes: list[str] = Field(default_factory=list, description="permissions a caller needs")
    cost_usd: float = Field(default=0.0, ge=0)
    quota_per_run: int = Field(default=10, ge=1)
    side_effect: bool = False
    compensation: str | None = Field(
        default=None, description="the tool that undoes this one's side effect"
    )
    idempotency_key: str | None = Field(
        default=None,
        description="where a side effect takes keel's key (derived from the run and the step):"
        " `argument:<name>` (keel fills that argument in; the tool applies a key once) or"
        " `header:<name>` (built-in HTTP tools). Without one a side effect runs at most once:"
        " an ambiguous outcome waits for `client.py reconcile`",
    )
    clearance: SecurityLevel = Field(
        default="public",
        description="the security level of what the tool returns: a caller below it is"
        " refused before the call, so the result never reaches its model or history",
    )
    server: str | None = Field(default=None, description="the MCP server (of [servers]) it is on")
    server_tool: str | None = Field(
        default=None, description="its name on that server, when not this table's name"
    )
    python: str | None = Field(
        default=None, description="`module:function`, an async function of the user's"
    )
    output_schema: dict[str, Any] | None = Field(
        default=None, description="the JSON Schema its structured result must match (MCP)"
    )
    timeout_seconds: float = Field(default=20, gt=0, le=3600, description="one attempt's limit")
    approval: bool = Field(
        default=False,
        description="a person approves each call, with its exact arguments, before it runs",
    )
    approval_timeout_seconds: float = Field(
        default=3600, gt=0, le=7 * 24 * 3600, description="how long a call waits for a decision"
    )
    approval_default: Literal["approve", "reject"] = Field(
        default="reject", description="what a call's deadline decides"
    )

    @model_validator(mode="after")
    def _side_effects_compensate(self) -> ToolSpec:
        if self.side_effect and not self.compensation:
            raise ValueError("a tool with a side effect needs a compensation")
        if self.server is not None and self.python is not None:
            raise ValueError("a tool is on an MCP server or a Python function, not both")
        if self.server_tool is not None and self.server is None:
            raise ValueError("server_tool names a tool on a server: give the server too")
        if self.python is not None and not PYTHON_PATH.match(self.python):
            raise ValueError(f"python {self.python!r} is not written module:function")
        if self.source == "builtin":
            if not self.description:
                raise ValueError("a built-in tool needs a description")
            if not self.arguments:
                raise ValueError("a built-in tool needs its arguments' JSON Schema")
        if self.arguments and self.arguments.get("type") != "object":
            raise ValueError('arguments must be a JSON Schema with "type": "object"')
        _check_key_place(self)
        return self

    @property
    def key_argument(self) -> str | None:
        """The argument keel fills with the call's idempotency key, if the contract names one."""
        place = self.idempotency_key or ""
        return place.removeprefix("argument:") if place.startswith("argument:") else None

    @property
    def at_most_once(self) -> bool:
        """A side effect that takes no key: sent once, never again without an operator.

        Built-in side effects always send their key as the `Idempotency-Key` header
        (contracts recorded before this field existed say nothing about it).
        """
        return self.side_effect and self.idempotency_key is None and self.source != "builtin"

    @property
    def source(self) -> str:
        """`builtin`, `mcp:<server>` or `python:<module>`, as `client.py tools` shows it."""
        if self.server is not None:
            return f"mcp:{self.server}"
        if self.python is not None:
            return f"python:{self.python.partition(':')[0]}"
        return "builtin"


def _check_key_place(spec: ToolSpec) -> None:
    place = spec.idempotency_key
    if place is None:
        return
    if not spec.side_effect:
        raise ValueError("idempotency_key is for a tool with a side effect (side_effect = true)")
    kind, _, name = place.partition(":")
    if kind not in ("argument", "header") or not name:
        raise ValueError(
            f"idempotency_key {place!r} is not written argument:<name> or header:<name>"
        )
    if kind == "header" and spec.source != "builtin":
        raise ValueError(
            "idempotency_key header:<name> is for built-in HTTP tools; an MCP or Python tool"
            " takes its key as an argument (argument:<name>)"
        )


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
