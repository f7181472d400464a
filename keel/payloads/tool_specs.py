"""The tools an agent may call, as tools.toml declares them: MCP servers, Python, built-ins."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StringConstraints, model_validator

from keel.payloads.clearance import SecurityLevel

# `package.module:function`, as a Python tool names its implementation.
PYTHON_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")  # what keel sends a key in

# A variable of the worker's environment, named in a contract so that its value (a
# token, a key) never is: upper case, as environment variables are written.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=100)]


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
        " `header:<name>` (a built-in tool, or a tool of an MCP server with a url: keel sends"
        " the key in that header of the call's request). Without one a side effect runs at"
        " most once: an ambiguous outcome waits for `client.py reconcile`",
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
    def key_header(self) -> str | None:
        """The HTTP header the call's request carries keel's key in, if the contract names one."""
        place = self.idempotency_key or ""
        return place.removeprefix("header:") if place.startswith("header:") else None

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
    if kind == "header" and not HEADER_NAME.match(name):
        raise ValueError(f"idempotency_key {place!r}: {name!r} is not an HTTP header name")
    if kind == "header" and spec.python is not None:
        raise ValueError(
            "idempotency_key header:<name> is for tools called over HTTP (built-in, or an MCP"
            " server with a url); a Python tool takes its key as an argument (argument:<name>)"
        )
