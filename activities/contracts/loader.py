"""Load every contract file and check each against the others, naming file and field.

A worker refuses to start on a contract that is wrong, so a typo in a tool name
or a prompt id fails at deploy time instead of in the middle of someone's run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ValidationError

from activities.llm.contract_files import read_contract, tables
from activities.llm.prices import PriceError, PriceTable
from activities.llm.prompts import PromptBook, PromptError
from activities.tools.builtin import BUILTIN_TOOLS
from activities.tools.discovery import DiscoveryError, Resolved, resolve_tools
from keel.payloads.contracts import (
    AgentSpec,
    ContractSnapshot,
    Quality,
    Routes,
    Rubric,
    parse_model,
)
from keel.payloads.errors import describe_validation_error
from keel.payloads.outputs import OUTPUT_MODELS
from keel.payloads.tool_specs import McpServerSpec, ToolSpec
from keel.rules.rate_limit import RateLimit
from keel.rules.tenants import TENANT_NAME, TenantBudget

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
FILES = (
    "agents.toml",
    "tools.toml",
    "rubrics.toml",
    "routes.toml",
    "prompts.toml",
    "prices.toml",
    "quality.toml",
    "limits.toml",
    "tenants.toml",
)
# Read when present: a folder of contracts from before they existed still loads.
OPTIONAL = frozenset({"limits.toml", "tenants.toml"})

M = TypeVar("M", bound=BaseModel)


class ContractError(ValueError):
    """A contract file is missing, malformed, or names something that does not exist."""


def _version(path: Path, raw: dict[str, Any]) -> str:
    if path.name in OPTIONAL and not path.exists():
        return "-@absent"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{raw.get('version', '-')}@{digest}"


def _table(
    path: Path, raw: dict[str, Any], key: str, model: type[M], *, optional: bool = False
) -> dict[str, M]:
    entries = raw.get(key)
    if optional and entries is None:
        return {}
    if not isinstance(entries, dict) or not entries:
        raise ContractError(f"{path}: needs at least one [{key}.<name>] table")
    return tables(entries, model, path, ContractError, f"{key}.")


def _whole(path: Path, raw: dict[str, Any], model: type[M]) -> M:
    """A file that is one model as a whole, beside its `version`."""
    try:
        return model.model_validate({k: v for k, v in raw.items() if k != "version"})
    except ValidationError as err:
        raise ContractError(f"{path}: {describe_validation_error(err)}") from err


def _require(
    where: str, names: Iterable[str], known: Iterable[str], what: str, hint: str = ""
) -> None:
    missing = sorted(set(names) - set(known))
    if missing:
        raise ContractError(f"{where}: unknown {what} {', '.join(map(repr, missing))}{hint}")


def _check_tools(path: Path, tools: dict[str, ToolSpec]) -> None:
    for name, tool in tools.items():
        if tool.source == "builtin" and name not in BUILTIN_TOOLS:
            raise ContractError(
                f"{path} [tools.{name}]: no implementation of tool {name!r}"
                f" (the worker implements {', '.join(sorted(BUILTIN_TOOLS))};"
                " a tool of your own names its `server` or its `python` function)"
            )
        try:
            Draft202012Validator.check_schema(tool.arguments)
        except SchemaError as err:
            raise ContractError(f"{path} [tools.{name}] arguments: {err.message}") from err
        if tool.compensation is not None:
            _require(f"{path} [tools.{name}] compensation", [tool.compensation], tools, "tool")


def _resolve_tools(
    path: Path, tools: dict[str, ToolSpec], servers: dict[str, McpServerSpec]
) -> Resolved:
    """MCP servers started and asked for their tools, Python tools imported (see discovery)."""
    try:
        resolved = resolve_tools(tools, servers)
    except DiscoveryError as err:
        raise ContractError(f"{path} {err}") from None
    _check_tools(path, resolved.tools)
    return resolved


def _check_agents(
    path: Path,
    agents: dict[str, AgentSpec],
    tools: dict[str, ToolSpec],
    prompts: PromptBook,
    prices: PriceTable,
) -> None:
    for name, agent in agents.items():
        where = f"{path} [agents.{name}]"
        _require(f"{where} tools", agent.tools, tools, "tool")
        used = [agent.final_prompt, *([agent.turn_prompt] if agent.turn_prompt else [])]
        _require(f"{where} prompts", used, prompts.ids(), "prompt", " (see prompts.toml)")
        _require(f"{where} output_schema", [agent.output_schema], OUTPUT_MODELS, "schema")
        if agent.seed_tool and "query" not in tools[agent.seed_tool].arguments.get(
            "properties", {}
        ):
            raise ContractError(f"{where} seed_tool: {agent.seed_tool!r} takes no 'query'")
        for tool_name in agent.tools:
            lacking = set(tools[tool_name].scopes) - set(agent.scopes)
            if lacking:
                raise ContractError(
                    f"{where}: tool {tool_name!r} needs scopes {sorted(lacking)} the agent lacks"
                )
        for choice in agent.chain:
            try:
                prices.price(choice.provider, choice.model)
            except PriceError as err:
                raise ContractError(f"{where} models: {err}") from err


def _limits(path: Path, raw: dict[str, Any]) -> dict[str, RateLimit]:
    """limits.toml: `[limits."provider/model"]`, each model written as agents.toml does."""
    if not raw.get("limits"):
        return {}
    limits = _table(path, raw, "limits", RateLimit)
    for label in limits:
        try:
            parse_model(label)
        except ValueError as err:
            raise ContractError(f"{path} [limits.{label!r}]: {err}") from None
    return limits


def _tenants(path: Path, raw: dict[str, Any]) -> dict[str, TenantBudget]:
    if not raw.get("tenants"):
        return {}
    tenants = _table(path, raw, "tenants", TenantBudget)
    for name in tenants:
        if not TENANT_NAME.match(name):
            raise ContractError(
                f"{path} [tenants.{name}]: not a tenant name (1-64 letters, digits, '.', '_', '-')"
            )
    return tenants


@dataclass(frozen=True)
class Contracts:
    """What a worker runs on: the snapshot workflows see, the gateway's prompts and prices,
    the providers' rate limits and the tenants' budgets."""

    snapshot: ContractSnapshot
    prompts: PromptBook
    prices: PriceTable
    limits: dict[str, RateLimit]
    tenants: dict[str, TenantBudget]


def _read(directory: Path, name: str) -> dict[str, Any]:
    if name in OPTIONAL and not (directory / name).exists():
        return {}
    return read_contract(directory / name, ContractError)


def load_all(directory: Path = CONTRACTS_DIR) -> Contracts:
    """Every file read once, parsed, validated and cross-checked; versions recorded per file."""
    raws = {name: _read(directory, name) for name in FILES}
    try:
        prompts = PromptBook.parse(raws["prompts.toml"], directory / "prompts.toml")
        prices = PriceTable.parse(raws["prices.toml"], directory / "prices.toml")
    except (PromptError, PriceError) as err:
        raise ContractError(str(err)) from err
    tools_path = directory / "tools.toml"
    tools = _table(tools_path, raws["tools.toml"], "tools", ToolSpec)
    servers = _table(tools_path, raws["tools.toml"], "servers", McpServerSpec, optional=True)
    # Names first (a typo fails before any server starts), then the schemas found.
    _check_tools(tools_path, tools)
    resolved = _resolve_tools(tools_path, tools, servers)
    tools = resolved.tools
    agents = _table(directory / "agents.toml", raws["agents.toml"], "agents", AgentSpec)
    _check_agents(directory / "agents.toml", agents, tools, prompts, prices)
    rubrics = _table(directory / "rubrics.toml", raws["rubrics.toml"], "rubrics", Rubric)
    routes = _whole(directory / "routes.toml", raws["routes.toml"], Routes)
    for intent, route in routes.intents.items():
        if route.agent is not None:
            where = f"{directory / 'routes.toml'} [intents.{intent}] agent"
            _require(where, [route.agent], agents, "agent", " (see agents.toml)")
    quality_path = directory / "quality.toml"
    quality = _whole(quality_path, raws["quality.toml"], Quality)
    for flow, settings in quality.flows.items():
        _require(f"{quality_path} [flows.{flow}] rubric", [settings.rubric], rubrics, "rubric")
    snapshot = ContractSnapshot(
        agents=agents,
        tools=tools,
        rubrics=rubrics,
        routes=routes,
        versions={name: _version(directory / name, raws[name]) for name in FILES},
        quality=quality,
        servers=servers,
        discovered=resolved.discovered,
    )
    limits = _limits(directory / "limits.toml", raws["limits.toml"])
    tenants = _tenants(directory / "tenants.toml", raws["tenants.toml"])
    return Contracts(snapshot, prompts, prices, limits, tenants)


def load_contracts(directory: Path = CONTRACTS_DIR) -> ContractSnapshot:
    """The snapshot alone, for callers that route but make no model calls."""
    return load_all(directory).snapshot


def check_all(directory: Path = CONTRACTS_DIR) -> list[str]:
    """One line per file for `client.py contracts check`; raises on the first problem."""
    loaded = load_all(directory)
    snapshot = loaded.snapshot
    counts = {
        "agents.toml": len(snapshot.agents),
        "tools.toml": len(snapshot.tools) + len(snapshot.servers),
        "rubrics.toml": len(snapshot.rubrics),
        "routes.toml": len(snapshot.routes.intents) + len(snapshot.routes.namespaces),
        "prompts.toml": len(loaded.prompts.ids()),
        "prices.toml": len(read_contract(directory / "prices.toml", ContractError)),
        "quality.toml": len(snapshot.quality.flows) + len(snapshot.quality.decoding),
        "limits.toml": len(loaded.limits),
        "tenants.toml": len(loaded.tenants),
    }
    return [f"{name:<14} {snapshot.versions[name]:<20} {counts[name]} entries" for name in FILES]
