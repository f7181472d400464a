"""Tools from outside, resolved when the contracts load: MCP servers and Python functions.

Each declared MCP server is started (or connected to) and asked for its tools; each
Python tool is imported. A declared tool gets its schema (and description, if the
contract has none) from what was found, and the snapshot records it, so a replay
sees the same list and schema the run saw. A server that fails to start, a tool a
server does not list or a module that does not import is one line naming it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp.types import Tool

from activities.tools.mcp_servers import ServerSetupError, list_all_tools, open_client, redact
from activities.tools.python_tools import PythonToolError, load_python_tool
from keel.payloads.tool_specs import McpServerSpec, ToolSpec

DESCRIPTION_CHARS = 300


class DiscoveryError(ValueError):
    """Where (`[servers.x]` or `[tools.y]`) and why, in one line."""


@dataclass(frozen=True)
class Resolved:
    tools: dict[str, ToolSpec]
    discovered: dict[str, list[str]]


def resolve_tools(
    tools: Mapping[str, ToolSpec],
    servers: Mapping[str, McpServerSpec],
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Every tool with its schema filled in; every server's listing by name."""
    listings = discover_servers(servers, environ) if servers else {}
    resolved: dict[str, ToolSpec] = {}
    for name, spec in tools.items():
        update: dict[str, Any] = {} if spec.capability else {"capability": name}
        if spec.server is not None:
            update |= _from_server(name, spec, listings)
            _check_key_header(name, spec, servers[spec.server])
        elif spec.python is not None:
            update |= _from_python(name, spec)
        resolved[name] = spec.model_copy(update=update) if update else spec
    return Resolved(
        resolved, {server: sorted(t.name for t in found) for server, found in listings.items()}
    )


def _from_server(name: str, spec: ToolSpec, listings: Mapping[str, list[Tool]]) -> dict[str, Any]:
    assert spec.server is not None
    listing = listings.get(spec.server)
    if listing is None:
        known = ", ".join(sorted(listings)) or "none"
        raise DiscoveryError(
            f"[tools.{name}] server: unknown server {spec.server!r} (declared: {known})"
        )
    remote = spec.server_tool or name
    found = next((tool for tool in listing if tool.name == remote), None)
    if found is None:
        names = ", ".join(sorted(t.name for t in listing))
        raise DiscoveryError(
            f"[tools.{name}]: server {spec.server!r} lists no tool {remote!r} (it lists: {names})"
        )
    schema = dict(found.input_schema)
    if schema.get("type") != "object":
        raise DiscoveryError(f"[tools.{name}]: server {spec.server!r} gives a non-object schema")
    update: dict[str, Any] = {"output_schema": found.output_schema}
    if not spec.arguments:
        update["arguments"] = _without_key(name, spec, schema)
    if not spec.description:
        text = found.description or found.title or remote
        update["description"] = " ".join(text.split())[:DESCRIPTION_CHARS]
    return update


def _from_python(name: str, spec: ToolSpec) -> dict[str, Any]:
    assert spec.python is not None
    try:
        tool = load_python_tool(spec.python)
    except PythonToolError as err:
        raise DiscoveryError(f"[tools.{name}] python: {err}") from None
    update: dict[str, Any] = {}
    if not spec.arguments:
        update["arguments"] = _without_key(name, spec, tool.schema)
    if not spec.description:
        update["description"] = tool.description or name
    return update


def discover_servers(
    servers: Mapping[str, McpServerSpec], environ: Mapping[str, str] | None = None
) -> dict[str, list[Tool]]:
    """Every server's tools, listed on a short session of its own.

    On a thread with its own event loop: the loader is called from plain code and from
    a running loop alike (the worker's contract activity, a test), and starting
    servers must block neither.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["found"] = asyncio.run(_discover_all(servers, environ))
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="mcp-discovery")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    found: dict[str, list[Tool]] = outcome["found"]
    return found


async def _discover_all(
    servers: Mapping[str, McpServerSpec], environ: Mapping[str, str] | None
) -> dict[str, list[Tool]]:
    names = list(servers)
    listings = await asyncio.gather(
        *(_discover(n, servers[n], environ) for n in names), return_exceptions=True
    )
    found: dict[str, list[Tool]] = {}
    for name, listing in zip(names, listings, strict=True):
        if isinstance(listing, BaseException):
            raise listing
        found[name] = listing
    return found


async def _discover(
    name: str, spec: McpServerSpec, environ: Mapping[str, str] | None
) -> list[Tool]:
    try:
        client, secrets, _ = open_client(name, spec, environ)
    except ServerSetupError as err:
        raise DiscoveryError(f"[servers.{name}]: {err}") from None
    try:
        async with asyncio.timeout(spec.startup_seconds):
            async with client:
                return await list_all_tools(client)
    except (Exception, asyncio.CancelledError) as error:
        leaf = _leaf(error)
        what = "did not answer" if isinstance(leaf, TimeoutError) else "cannot start"
        where = spec.command if spec.command is not None else spec.url
        detail = redact(str(leaf) or type(leaf).__name__, secrets)[:200]
        raise DiscoveryError(
            f"[servers.{name}]: {what} ({where}): {type(leaf).__name__}: {detail}"
        ) from None


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside task-group exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _check_key_header(name: str, spec: ToolSpec, server: McpServerSpec) -> None:
    """A key in a header needs a request to carry it: an HTTP server's, not a process's pipe."""
    header = spec.key_header
    if header is None:
        return
    if server.transport != "http":
        raise DiscoveryError(
            f"[tools.{name}] idempotency_key: server {spec.server!r} is a command (stdio),"
            " whose calls carry no headers; take the key as an argument (argument:<name>)"
        )
    if header.lower() in {declared.lower() for declared in server.headers}:
        raise DiscoveryError(
            f"[tools.{name}] idempotency_key: header {header!r} is one of server"
            f" {spec.server!r}'s own headers; name another"
        )


def _without_key(name: str, spec: ToolSpec, schema: dict[str, Any]) -> dict[str, Any]:
    """The schema the model sees: the key argument is keel's to fill, not the model's."""
    key = spec.key_argument
    if key is None:
        return schema
    properties = dict(schema.get("properties") or {})
    if key not in properties:
        raise DiscoveryError(
            f"[tools.{name}] idempotency_key: the tool takes no argument {key!r}"
            f" (it takes: {', '.join(sorted(properties)) or 'none'})"
        )
    del properties[key]
    required = [r for r in schema.get("required", []) if r != key]
    return {**schema, "properties": properties, "required": required}
