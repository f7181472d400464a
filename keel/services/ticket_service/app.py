"""The HTTP API. Every write requires an `Idempotency-Key` header.

Every call but `GET /health` requires `Authorization: Bearer <token>`, compared in
constant time; without it, or with another token, the answer is 401 and nothing is
read or written.

With faults enabled (`--faults`, for tests only), `POST /_faults` makes the next
calls of a route hold their transaction, delay their answer after the commit, or
fail with a status, so tests can make real processes misbehave on cue.

`POST /undo` undoes the write made under another key (cancels the ticket it
created, deletes the subtask, ...), whether or not its caller saw the answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from keel.infra.bearer import wrong_bearer
from keel.services.ticket_service.db import Action, ServiceError, TicketDB

Route = Literal[
    "create_ticket",
    "cancel_ticket",
    "create_subtask",
    "delete_subtask",
    "assign",
    "revoke_assignment",
    "notify",
    "retract",
    "undo",
]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=200)]


class NewTicket(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=5000)
    severity: Literal["low", "medium", "high", "critical"]


class NewSubtask(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class NewAssignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=100)


class NewNotification(BaseModel):
    ticket_id: int
    channel: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=2000)


class Undo(BaseModel):
    key: str = Field(min_length=8, max_length=200, description="the key of the write to undo")


class Fault(BaseModel):
    route: Route
    times: int = Field(default=1, ge=1)
    delay_ms: int = Field(default=0, ge=0, description="wait before the transaction: slow")
    hold_ms: int = Field(default=0, ge=0, description="keep the transaction open before writing")
    after_commit_ms: int = Field(default=0, ge=0, description="delay the answer after commit")
    status: int | None = Field(default=None, ge=400, le=599, description="fail instead")


class _Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def take(self, route: str) -> Fault | None:
        with self._lock:
            for fault in self._pending:
                if fault.route == route:
                    fault.times -= 1
                    if fault.times == 0:
                        self._pending.remove(fault)
                    return fault.model_copy()
        return None


def create_app(db_path: Path, token: str, faults_enabled: bool = False) -> FastAPI:
    if not token:
        raise ValueError("the ticket service needs a bearer token")
    db = TicketDB(db_path)
    faults = _Faults()
    app = FastAPI(title="ticket service", docs_url=None, redoc_url=None, openapi_url=None)
    _guard(app, f"Bearer {token}".encode())
    write = _Writer(db, faults if faults_enabled else None)
    _write_routes(app, db, write)
    _undo_routes(app, db, write, faults_enabled)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/tickets/{ticket_id}")
    def ticket(ticket_id: int) -> dict[str, Any]:
        return db.ticket_view(ticket_id)

    if faults_enabled:

        @app.post("/_faults", status_code=204)
        def add_fault(fault: Fault) -> None:
            faults.add(fault)

    return app


def _guard(app: FastAPI, expected: bytes) -> None:
    """The bearer check and the service's own errors as JSON."""

    @app.middleware("http")
    async def bearer_only(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Before routing, so an unauthenticated call reaches no handler and no database."""
        if request.url.path != "/health":
            refused = wrong_bearer(request, expected, "detail")
            if refused is not None:
                return refused
        return await call_next(request)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse(status_code=error.status, content={"detail": error.message})


class _Writer:
    """Every write goes through the idempotency table, with the injected faults (tests)."""

    def __init__(self, db: TicketDB, faults: _Faults | None) -> None:
        self._db = db
        self._faults = faults

    def __call__(
        self, key: str, route: Route, body: dict[str, Any], action: Action, fault_route: str = ""
    ) -> JSONResponse:
        fault = self._faults.take(fault_route or route) if self._faults is not None else None
        if fault is not None and fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.status is not None:
            raise HTTPException(fault.status, f"injected failure on {route}")
        status, response, replayed = self._db.idempotent(
            key, route, body, action, hold_ms=fault.hold_ms if fault else 0
        )
        if fault is not None and fault.after_commit_ms:
            time.sleep(fault.after_commit_ms / 1000)
        return JSONResponse(
            status_code=status,
            content=response,
            headers={"Idempotent-Replayed": "true" if replayed else "false"},
        )


def _write_routes(app: FastAPI, db: TicketDB, write: _Writer) -> None:
    @app.post("/tickets")
    def create_ticket(body: NewTicket, key: IdempotencyKey) -> JSONResponse:
        action = db.create_ticket(body.title, body.description, body.severity)
        return write(key, "create_ticket", body.model_dump(), action)

    @app.post("/tickets/{ticket_id}/subtasks")
    def create_subtask(ticket_id: int, body: NewSubtask, key: IdempotencyKey) -> JSONResponse:
        action = db.create_subtask(ticket_id, body.title)
        return write(key, "create_subtask", {"ticket_id": ticket_id, **body.model_dump()}, action)

    @app.post("/tickets/{ticket_id}/assignments")
    def assign(ticket_id: int, body: NewAssignment, key: IdempotencyKey) -> JSONResponse:
        action = db.assign(ticket_id, body.assignee)
        return write(key, "assign", {"ticket_id": ticket_id, **body.model_dump()}, action)

    @app.post("/notifications")
    def notify(body: NewNotification, key: IdempotencyKey) -> JSONResponse:
        action = db.notify(body.ticket_id, body.channel, body.message)
        return write(key, "notify", body.model_dump(), action)


def _undo_routes(app: FastAPI, db: TicketDB, write: _Writer, faults_enabled: bool) -> None:
    def undo_by_record(route: Route, path: str, field: str) -> None:
        """A route that undoes one record named in the path; `field` names it in the body kept."""

        def handler(record_id: int, key: IdempotencyKey) -> JSONResponse:
            return write(key, route, {field: record_id}, db.undo_record(route, record_id))

        handler.__name__ = route
        app.post(path)(handler)

    undo_by_record("cancel_ticket", "/tickets/{record_id}/cancel", "ticket_id")
    undo_by_record("delete_subtask", "/subtasks/{record_id}/delete", "subtask_id")
    undo_by_record("revoke_assignment", "/assignments/{record_id}/revoke", "assignment_id")
    undo_by_record("retract", "/notifications/{record_id}/retract", "notification_id")

    @app.post("/undo")
    def undo(body: Undo, key: IdempotencyKey) -> JSONResponse:
        """Undo the write made under `body.key`, or make sure it never happens."""
        # Faults aimed at an undo route (cancel_ticket, ...) hit the undo by key of its write.
        undone = db.undo_route(body.key) if faults_enabled else None
        return write(key, "undo", body.model_dump(), db.undo(body.key), undone or "")
