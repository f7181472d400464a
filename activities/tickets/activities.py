"""Ticket-service calls as activities; a retried call sends the same key and changes nothing.

Every call heartbeats while it waits, so a cancelled step's request is aborted
rather than left to commit after the workflow moved on, and undoes treat a record
that is already gone as undone.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.tickets.http_errors import raise_for_status
from keel.payloads.errors import TICKET_SERVICE_UNAVAILABLE
from keel.payloads.tickets import (
    AssignTicket,
    CreateSubtask,
    CreateTicket,
    SendNotification,
    ServiceRecord,
    UndoByKey,
    UndoRecord,
)

log = structlog.get_logger()


class TicketActivities:
    def __init__(
        self, base_url: str, token: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        """`token`: the service's bearer token, read by the worker from its environment.

        Never an activity input: inputs are recorded in the history.
        """
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    async def _post(
        self, path: str, key: str, body: dict[str, Any] | None = None, *, undo: bool = False
    ) -> ServiceRecord:
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout) as http:
                response = await heartbeating(
                    http.post(path, json=body, headers={"Idempotency-Key": key, **self._auth})
                )
        except httpx.TransportError as error:
            raise ApplicationError(
                f"ticket service at {self._base_url} unreachable: {error!r}",
                type=TICKET_SERVICE_UNAVAILABLE,
            ) from error
        if undo and response.status_code == 404:
            # Undoing what is not there is done: the unwind goes on.
            log.info("tickets.undo_absent", path=path, key=key)
            return ServiceRecord(id=0, status="absent")
        raise_for_status(response)
        data = response.json()
        record = ServiceRecord(
            id=data["id"],
            status=data["status"],
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )
        log.info("tickets.call", path=path, key=key, **record.model_dump())
        return record

    async def _undo(self, collection: str, action: str, call: UndoRecord) -> ServiceRecord:
        """A compensation: the record's own undo endpoint, under the undo's own key."""
        path = f"/{collection}/{call.record_id}/{action}"
        return await self._post(path, call.idempotency_key, undo=True)

    @activity.defn(name="create_ticket")
    async def create_ticket(self, call: CreateTicket) -> ServiceRecord:
        body = call.model_dump(include={"title", "description", "severity"})
        return await self._post("/tickets", call.idempotency_key, body)

    @activity.defn(name="cancel_ticket")
    async def cancel_ticket(self, call: UndoRecord) -> ServiceRecord:
        return await self._undo("tickets", "cancel", call)

    @activity.defn(name="create_subtask")
    async def create_subtask(self, call: CreateSubtask) -> ServiceRecord:
        path = f"/tickets/{call.ticket_id}/subtasks"
        return await self._post(path, call.idempotency_key, {"title": call.title})

    @activity.defn(name="delete_subtask")
    async def delete_subtask(self, call: UndoRecord) -> ServiceRecord:
        return await self._undo("subtasks", "delete", call)

    @activity.defn(name="assign_ticket")
    async def assign_ticket(self, call: AssignTicket) -> ServiceRecord:
        path = f"/tickets/{call.ticket_id}/assignments"
        return await self._post(path, call.idempotency_key, {"assignee": call.assignee})

    @activity.defn(name="revoke_assignment")
    async def revoke_assignment(self, call: UndoRecord) -> ServiceRecord:
        return await self._undo("assignments", "revoke", call)

    @activity.defn(name="send_notification")
    async def send_notification(self, call: SendNotification) -> ServiceRecord:
        body = call.model_dump(include={"ticket_id", "channel", "message"})
        return await self._post("/notifications", call.idempotency_key, body)

    @activity.defn(name="retract_notification")
    async def retract_notification(self, call: UndoRecord) -> ServiceRecord:
        return await self._undo("notifications", "retract", call)

    @activity.defn(name="undo_side_effect")
    async def undo_side_effect(self, call: UndoByKey) -> ServiceRecord:
        """Undo by the step's key: works whether or not the step's answer was ever seen."""
        return await self._post("/undo", call.idempotency_key, {"key": call.target_key})

    def all(self) -> list[Any]:
        return [
            self.create_ticket,
            self.cancel_ticket,
            self.create_subtask,
            self.delete_subtask,
            self.assign_ticket,
            self.revoke_assignment,
            self.send_notification,
            self.retract_notification,
            self.undo_side_effect,
        ]
