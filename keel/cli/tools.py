"""`client.py tools`: every tool an agent may be given, with its source, schema and policy.

Offline, like `contracts check`: the same loader the worker runs, so the MCP servers
are started and asked for their tools, and the Python tools imported. A tool a
server lists that the contracts do not name is shown as what it is: not callable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from activities.contracts.loader import ContractError, load_contracts
from keel.cli.context import EXIT_OK, EXIT_USAGE, err
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.tool_specs import ToolSpec


def tool_rows(snapshot: ContractSnapshot) -> list[dict[str, Any]]:
    """One row per declared tool: what `client.py tools --json` prints."""
    rows = []
    for name, spec in snapshot.tools.items():
        roles = sorted({a.role for a in snapshot.agents.values() if name in a.tools})
        rows.append(
            {
                "tool": name,
                "source": spec.source,
                "description": spec.description,
                "capability": spec.capability,
                "roles": roles,
                "scopes": spec.scopes,
                "quota_per_run": spec.quota_per_run,
                "cost_usd": spec.cost_usd,
                "clearance": spec.clearance,
                "side_effect": spec.side_effect,
                "delivery": _delivery(spec),
                "timeout_seconds": spec.timeout_seconds,
                "arguments": spec.arguments,
            }
        )
    return rows


def undeclared(snapshot: ContractSnapshot) -> dict[str, list[str]]:
    """Per server, the tools it lists that no contract names: denied."""
    named = {
        (spec.server, spec.server_tool or name)
        for name, spec in snapshot.tools.items()
        if spec.server is not None
    }
    return {
        server: [tool for tool in tools if (server, tool) not in named]
        for server, tools in snapshot.discovered.items()
    }


def _policy(spec: ToolSpec, roles: list[str]) -> str:
    parts = [
        f"roles {', '.join(roles) or '(none)'}",
        f"scopes {', '.join(spec.scopes) or '(none)'}",
        f"quota {spec.quota_per_run}/run",
        f"cost ${spec.cost_usd:g}",
        f"clearance {spec.clearance}",
    ]
    if spec.side_effect:
        parts.append(f"side effect ({_delivery(spec)}), undone by {spec.compensation}")
    return "; ".join(parts)


def _delivery(spec: ToolSpec) -> str | None:
    """How a retry is kept from acting twice: a key the tool applies once, or one send."""
    if not spec.side_effect:
        return None
    if spec.at_most_once:
        return "at most once"
    return f"idempotency key: {spec.idempotency_key or 'header:Idempotency-Key'}"


def print_tools(snapshot: ContractSnapshot) -> None:
    for row in tool_rows(snapshot):
        spec = snapshot.tools[row["tool"]]
        print(f"{row['tool']}  [{row['source']}]  capability {spec.capability}")
        print(f"  {spec.description}")
        print(f"  policy: {_policy(spec, row['roles'])}")
        print(f"  arguments: {json.dumps(spec.arguments, separators=(',', ':'))}")
    for server, tools in undeclared(snapshot).items():
        if tools:
            print(f"not declared, so never called (mcp:{server}): {', '.join(tools)}")


def cmd_tools(directory: Path, as_json: bool) -> int:
    try:
        snapshot = load_contracts(directory)
    except ContractError as error:
        err(f"error: invalid contracts: {error}")
        return EXIT_USAGE
    if as_json:
        print(
            json.dumps({"tools": tool_rows(snapshot), "undeclared": undeclared(snapshot)}, indent=2)
        )
    else:
        print_tools(snapshot)
    return EXIT_OK
