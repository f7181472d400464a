"""Agents' tools as one activity: a typed registry, arguments checked against the contract.

The workflow's ToolRouter has already decided the call is allowed; this side
checks the arguments against the tool's JSON Schema, the caller's clearance
against each namespace, and for side effects asks the tool's breaker first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from jsonschema import Draft202012Validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents.activities import DocumentActivities
from activities.llm.breakers import Breakers
from activities.tickets.activities import TicketActivities
from infra.tracing import annotate
from models.contracts import ContractSnapshot
from models.errors import (
    CIRCUIT_OPEN,
    TICKET_SERVICE_UNAVAILABLE,
    TOOL_ARGUMENTS_INVALID,
    UNKNOWN_TOOL,
)
from models.tickets import CreateTicket, UndoByKey, UndoRecord
from models.tools import ToolInvocation, ToolOutcome

log = structlog.get_logger()

SNIPPET_CHARS = 160
READ_CHARS = 1200
SEARCH_LIMITS = {"search_documents": 4, "search_wide": 8}
# What counts against a tool's breaker: the service behind it did not answer.
TOOL_BREAKER_FAILURES = frozenset({TICKET_SERVICE_UNAVAILABLE})

Handler = Callable[[ToolInvocation], Awaitable[ToolOutcome]]


class ToolActivities:
    def __init__(
        self,
        contracts: ContractSnapshot | Callable[[], ContractSnapshot],
        documents: DocumentActivities,
        tickets: TicketActivities,
        breakers: Breakers | None = None,
    ) -> None:
        # A callable is the worker's contract source: an edit of tools.toml applies at once.
        self._contracts_of = contracts if callable(contracts) else lambda: contracts
        self._documents = documents
        self._tickets = tickets
        self._breakers = breakers
        self._handlers: dict[str, Handler] = {
            "search_documents": self._search,
            "search_wide": self._search,
            "read_passage": self._read,
            "create_ticket": self._create_ticket,
            "cancel_ticket": self._cancel_ticket,
        }
        missing = set(self._contracts_of().tools) - set(self._handlers)
        if missing:
            raise ValueError(f"tools.toml names tools with no implementation: {sorted(missing)}")

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
        spec = self._contracts_of().tools.get(call.tool)
        handler = self._handlers.get(call.tool)
        if spec is None or handler is None:
            raise ApplicationError(
                f"unknown tool {call.tool!r}", type=UNKNOWN_TOOL, non_retryable=True
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
        if not (self._breakers and spec.side_effect):
            return await handler(call)
        name = f"tool:{call.tool}"
        permission = await self._breakers.acquire(name)
        if not permission.allowed:
            raise ApplicationError(
                f"circuit open for {name}: {permission.reason}",
                type=CIRCUIT_OPEN,
                non_retryable=True,
            )
        try:
            outcome = await handler(call)
        except ApplicationError as error:
            await self._breakers.record(name, error.type in TOOL_BREAKER_FAILURES, permission.state)
            raise
        await self._breakers.record(name, False, permission.state)
        return outcome

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
                    idempotency_key=call.idempotency_key, record_id=int(call.arguments["record_id"])
                )
            )
        return ToolOutcome(
            tool=call.tool, text=f"ticket {record.id} {record.status}", replayed=record.replayed
        )
