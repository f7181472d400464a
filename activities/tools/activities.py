"""Agents' tools as one activity: a typed registry, arguments checked against the contract.

Built-in tools, MCP servers' tools and Python tools all run here, under one policy.
The workflow's ToolRouter has already decided the call is allowed; this side checks
again what it can (the tool is declared, the caller's clearance reaches the tool's
and each namespace's), checks the arguments against the tool's JSON Schema, and asks
the tool's breaker first when the tool has a side effect or reaches an MCP server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from jsonschema import Draft202012Validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents.activities import DocumentActivities
from activities.heartbeat import heartbeating
from activities.llm.breakers import Breakers
from activities.tickets.activities import TicketActivities
from activities.tools.builtin import BUILTIN_TOOLS
from activities.tools.mcp_servers import McpServers
from activities.tools.python_tools import PythonTools
from activities.tools.results import mcp_outcome, python_outcome
from activities.tools.tool_breakers import ToolBreakers
from keel.infra.tracing import annotate
from keel.payloads.clearance import may_read
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.errors import (
    ACCESS_DENIED,
    CIRCUIT_OPEN,
    SIDE_EFFECT_AMBIGUOUS,
    TICKET_SERVICE_UNAVAILABLE,
    TOOL_ARGUMENTS_INVALID,
    TOOL_SERVER_UNAVAILABLE,
    UNKNOWN_TOOL,
)
from keel.payloads.tickets import CreateTicket, UndoByKey, UndoRecord
from keel.payloads.tool_specs import ToolSpec
from keel.payloads.tools import ToolInvocation, ToolOutcome

log = structlog.get_logger()

SNIPPET_CHARS = 160
READ_CHARS = 1200
SEARCH_LIMITS = {"search_documents": 4, "search_wide": 8}
# What counts against a tool's breaker: the service behind it did not answer.
TOOL_BREAKER_FAILURES = frozenset({TICKET_SERVICE_UNAVAILABLE, TOOL_SERVER_UNAVAILABLE})

Handler = Callable[[ToolInvocation], Awaitable[ToolOutcome]]


class ToolActivities:
    def __init__(
        self,
        contracts: ContractSnapshot | Callable[[], ContractSnapshot],
        documents: DocumentActivities,
        tickets: TicketActivities,
        breakers: Breakers | None = None,
        mcp: McpServers | None = None,
    ) -> None:
        # A callable is the worker's contract source: an edit of tools.toml applies at once.
        self._contracts_of = contracts if callable(contracts) else lambda: contracts
        self._documents = documents
        self._tickets = tickets
        # Asked without a round trip while closed (activities/tools/tool_breakers.py).
        self._breakers = ToolBreakers(breakers) if breakers else None
        self._mcp = mcp or McpServers(lambda: self._contracts_of().servers)
        self._python = PythonTools()
        self._handlers: dict[str, Handler] = {
            "search_documents": self._search,
            "search_wide": self._search,
            "read_passage": self._read,
            "create_ticket": self._create_ticket,
            "cancel_ticket": self._cancel_ticket,
        }
        assert set(self._handlers) == BUILTIN_TOOLS, "activities/tools/builtin.py is the list"
        tools = self._contracts_of().tools
        missing = {n for n, t in tools.items() if t.source == "builtin"} - set(self._handlers)
        if missing:
            raise ValueError(f"tools.toml names tools with no implementation: {sorted(missing)}")

    @property
    def mcp(self) -> McpServers:
        """The worker's MCP sessions: the worker closes them when it stops."""
        return self._mcp

    async def drain_breakers(self) -> None:
        """Successes not yet told to their breakers are told (the worker's shutdown)."""
        if self._breakers is not None:
            await self._breakers.drain()

    @activity.defn(name="call_tool")
    async def call(self, call: ToolInvocation) -> ToolOutcome:
        """Run one tool call; its trace span says which tool and how it ended, not what."""
        annotate(tool=call.tool)
        try:
            outcome = await self._call(call)
        except ApplicationError as error:
            annotate(outcome=error.type or "error")
            raise
        annotate(outcome="ok", passages=len(outcome.passage_ids))
        return outcome

    async def _call(self, call: ToolInvocation) -> ToolOutcome:
        # Off the event loop: after an edit, the reload starts MCP servers to list tools.
        spec, handler = self._checked(call, await asyncio.to_thread(self._contracts_of))
        call = _keyed(call, spec)
        if not (self._breakers and (spec.side_effect or spec.server is not None)):
            return await handler(call)
        name = f"tool:{call.tool}"
        # Heartbeating through the breaker's updates too: its entity workflow may wait
        # seconds for a worker (its last one died), and a missed heartbeat after the
        # call would send the call again.
        permission = await heartbeating(self._breakers.acquire(name))
        if not permission.allowed:
            raise ApplicationError(
                f"circuit open for {name}: {permission.reason}",
                type=CIRCUIT_OPEN,
                non_retryable=True,
            )
        try:
            outcome = await handler(call)
        except ApplicationError as error:
            failed = error.type in TOOL_BREAKER_FAILURES
            await heartbeating(self._breakers.record(name, failed, permission.state))
            raise
        await heartbeating(self._breakers.record(name, False, permission.state))
        return outcome

    def _checked(
        self, call: ToolInvocation, contracts: ContractSnapshot
    ) -> tuple[ToolSpec, Handler]:
        """The tool's contract and implementation, once the call passes what this side checks.

        Deny by default: only a tool the contracts name is called, whatever a server lists.
        """
        spec = contracts.tools.get(call.tool)
        handler = self._handler(spec, call.tool)
        if spec is None or handler is None:
            raise ApplicationError(
                f"unknown tool {call.tool!r}", type=UNKNOWN_TOOL, non_retryable=True
            )
        if not may_read(call.clearance, spec.clearance):
            raise ApplicationError(
                f"{call.tool} returns {spec.clearance} results;"
                f" clearance {call.clearance} may not read them",
                type=ACCESS_DENIED,
                non_retryable=True,
            )
        problems = [
            f"{'.'.join(map(str, e.path)) or 'arguments'}: {e.message}"
            for e in Draft202012Validator(spec.arguments).iter_errors(call.arguments)
        ]
        if problems:
            raise ApplicationError(
                f"{call.tool} arguments invalid: {'; '.join(problems[:3])}",
                type=TOOL_ARGUMENTS_INVALID,
                non_retryable=True,
            )
        if spec.at_most_once and activity.in_activity() and activity.info().attempt > 1:
            # Whatever retry policy sent it here: an earlier attempt may have acted.
            raise ApplicationError(
                f"{call.tool} runs at most once and attempt 1 may have taken effect:"
                " not sent again (client.py reconcile decides)",
                type=SIDE_EFFECT_AMBIGUOUS,
                non_retryable=True,
            )
        return spec, handler

    def _handler(self, spec: ToolSpec | None, name: str) -> Handler | None:
        if spec is None:
            return None
        if spec.server is not None:
            server, remote = spec.server, spec.server_tool or name
            return lambda call: self._mcp_call(call, spec, server, remote)
        if spec.python is not None:
            path = spec.python
            return lambda call: self._python_call(call, path)
        return self._handlers.get(name)

    async def _mcp_call(
        self, call: ToolInvocation, spec: ToolSpec, server: str, remote: str
    ) -> ToolOutcome:
        """On the server's kept-open session, heartbeating: a worker that dies mid-call is
        noticed within the heartbeat timeout, and a cancel reaches the call."""
        header = spec.key_header
        keyed = (header, call.idempotency_key) if header else None
        began = time.monotonic()
        try:
            result, secrets = await heartbeating(
                self._mcp.call(server, remote, dict(call.arguments), spec.timeout_seconds, keyed)
            )
        except asyncio.CancelledError:
            # Seen through a heartbeat: the call is abandoned and the slot is free at once.
            waited = round(time.monotonic() - began, 3)
            log.info("tools.mcp_cancelled", tool=call.tool, server=server, seconds=waited)
            raise
        outcome = mcp_outcome(call.tool, result, spec.output_schema, secrets)
        log.info("tools.mcp", tool=call.tool, server=server, is_error=outcome.is_error)
        return outcome

    async def _python_call(self, call: ToolInvocation, path: str) -> ToolOutcome:
        tool = self._python.get(path)
        value = await heartbeating(tool.call(dict(call.arguments)))
        return python_outcome(call.tool, value)

    async def _search(self, call: ToolInvocation) -> ToolOutcome:
        self._documents.check_access(call.namespaces, call.clearance)
        query = str(call.arguments["query"])
        limit = SEARCH_LIMITS[call.tool]
        found = await asyncio.to_thread(
            self._documents.store.search_many, call.namespaces, [query], limit
        )
        log.info("tools.search", tool=call.tool, query=query, hits=len(found))
        if not found:
            return ToolOutcome(tool=call.tool, text=f"no passages match {query!r}")
        lines = [f"{p.chunk_id} | {p.title} | {p.text[:SNIPPET_CHARS]}" for p in found]
        return ToolOutcome(
            tool=call.tool, text="\n".join(lines)[:2000], passage_ids=[p.chunk_id for p in found]
        )

    async def _read(self, call: ToolInvocation) -> ToolOutcome:
        chunk_id = str(call.arguments["passage_id"])
        passage = await asyncio.to_thread(self._documents.read, chunk_id, call.clearance)
        return ToolOutcome(
            tool=call.tool,
            text=f"{passage.title}: {passage.text[:READ_CHARS]}",
            passage_ids=[passage.chunk_id],
        )

    async def _create_ticket(self, call: ToolInvocation) -> ToolOutcome:
        record = await self._tickets.create_ticket(
            CreateTicket(
                idempotency_key=call.idempotency_key,
                title=str(call.arguments["title"]),
                # The workflow id, so an operator can trace the ticket to its run.
                description=f"opened by agent run {call.idempotency_key.split(':')[0]}",
                severity=str(call.arguments["severity"]),
            )
        )
        return ToolOutcome(
            tool=call.tool,
            text=f"ticket {record.id} {record.status}",
            record_id=record.id,
            replayed=record.replayed,
        )

    async def _cancel_ticket(self, call: ToolInvocation) -> ToolOutcome:
        """By the ticket, or by the key it was created with (its answer may never have come)."""
        if "key" in call.arguments:
            record = await self._tickets.undo_side_effect(
                UndoByKey(
                    idempotency_key=call.idempotency_key, target_key=str(call.arguments["key"])
                )
            )
        else:
            record = await self._tickets.cancel_ticket(
                UndoRecord(
                    idempotency_key=call.idempotency_key, record_id=call.integer("record_id")
                )
            )
        return ToolOutcome(
            tool=call.tool, text=f"ticket {record.id} {record.status}", replayed=record.replayed
        )


def _keyed(call: ToolInvocation, spec: ToolSpec) -> ToolInvocation:
    """The call with keel's key in the argument the contract names (the model never sees it)."""
    name = spec.key_argument
    if name is None:
        return call
    return call.model_copy(update={"arguments": {**call.arguments, name: call.idempotency_key}})
