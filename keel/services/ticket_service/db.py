"""Tickets, subtasks, assignments and a notifications outbox in SQLite.

Every write runs in one `BEGIN IMMEDIATE` transaction together with its
idempotency record, so a crash can never keep one without the other, and two
requests with the same key are serialized: the second sees the first's result.

An undo names the key of the write it undoes, not the record it made, so a caller
can undo a write whose answer it never saw. An undo that comes before its write
leaves a tombstone under the write's key: the write, arriving late, is refused.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.infra.sqlite import create_database

PEOPLE = ("oncall", "alice", "bob")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'cancelled')),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subtasks (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'deleted'))
);
CREATE TABLE IF NOT EXISTS people (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS assignments (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    assignee TEXT NOT NULL REFERENCES people(name),
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked'))
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    channel TEXT NOT NULL,
    message TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('notice', 'retraction')),
    retracts INTEGER REFERENCES notifications(id),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


# The route recorded under a key that was undone before its write arrived.
TOMBSTONE = "tombstone"
# Each write's undo, as the service's own route (and TicketDB's method) names it.
_UNDO_ROUTES = {
    "create_ticket": "cancel_ticket",
    "create_subtask": "delete_subtask",
    "assign": "revoke_assignment",
    "notify": "retract",
}


# The undo routes that mark their record rather than adding one: its table, the new status.
_MARKS = {
    "cancel_ticket": ("ticket", "cancelled"),
    "delete_subtask": ("subtask", "deleted"),
    "revoke_assignment": ("assignment", "revoked"),
}


class ServiceError(Exception):
    """A request the service refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Action = Callable[[sqlite3.Connection], tuple[int, dict[str, Any]]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class TicketDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        create_database(path, _SCHEMA)
        with self.connect() as db:
            db.executemany("INSERT OR IGNORE INTO people VALUES (?)", [(p,) for p in PEOPLE])

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            yield db
        finally:
            db.close()

    def idempotent(
        self,
        key: str,
        route: str,
        body: dict[str, Any],
        action: Action,
        hold_ms: int = 0,
    ) -> tuple[int, dict[str, Any], bool]:
        """Run `action` once per key; a repeat returns the stored answer (replayed=True).

        `hold_ms` keeps the transaction open before the write, for fault injection.
        """
        request_hash = hashlib.sha256(
            json.dumps([route, body], sort_keys=True).encode()
        ).hexdigest()
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT route, request_hash, status_code, response"
                    " FROM idempotency_keys WHERE key = ?",
                    (key,),
                ).fetchone()
                if row is not None:
                    db.execute("COMMIT")
                    if row["route"] == TOMBSTONE:
                        raise ServiceError(409, f"Idempotency-Key {key!r} was undone before it")
                    if row["request_hash"] != request_hash:
                        raise ServiceError(
                            422, f"Idempotency-Key {key!r} was used for a different request"
                        )
                    return row["status_code"], json.loads(row["response"]), True
                if hold_ms:
                    time.sleep(hold_ms / 1000)
                status, response = action(db)
                db.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?)",
                    (key, route, request_hash, status, json.dumps(response), _now()),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return status, response, False

    # --- the writes, each run inside `idempotent` ---------------------------------------

    @staticmethod
    def _ticket(db: sqlite3.Connection, ticket_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM tickets WHERE id = ?", (ticket_id,)
        ).fetchone()
        if row is None:
            raise ServiceError(404, f"no ticket {ticket_id}")
        return row

    @classmethod
    def _open_ticket(cls, db: sqlite3.Connection, ticket_id: int) -> None:
        if cls._ticket(db, ticket_id)["status"] != "open":
            raise ServiceError(409, f"ticket {ticket_id} is not open")

    @staticmethod
    def _insert(
        db: sqlite3.Connection, table: str, record: dict[str, Any], status: str
    ) -> tuple[int, dict[str, Any]]:
        """A new record of `table`: 201 with its id and `status`."""
        names = ", ".join(record)
        marks = ", ".join("?" * len(record))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        return 201, {"id": db.execute(sql, tuple(record.values())).lastrowid, "status": status}

    @staticmethod
    def _set_status(
        db: sqlite3.Connection, table: str, record_id: int, status: str
    ) -> tuple[int, dict[str, Any]]:
        """An undo that marks a record of `table` rather than deleting it; 404 if none."""
        cur = db.execute(f"UPDATE {table}s SET status = ? WHERE id = ?", (status, record_id))
        if cur.rowcount == 0:
            raise ServiceError(404, f"no {table} {record_id}")
        return 200, {"id": record_id, "status": status}

    @classmethod
    def create_ticket(cls, title: str, description: str, severity: str) -> Action:
        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            ticket = {"title": title, "description": description, "severity": severity}
            return cls._insert(
                db, "tickets", {**ticket, "status": "open", "created_at": _now()}, "open"
            )

        return run

    @classmethod
    def create_subtask(cls, ticket_id: int, title: str) -> Action:
        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            cls._open_ticket(db, ticket_id)
            subtask = {"ticket_id": ticket_id, "title": title, "status": "open"}
            return cls._insert(db, "subtasks", subtask, "open")

        return run

    @classmethod
    def assign(cls, ticket_id: int, assignee: str) -> Action:
        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            cls._open_ticket(db, ticket_id)
            if db.execute("SELECT 1 FROM people WHERE name = ?", (assignee,)).fetchone() is None:
                raise ServiceError(422, f"unknown assignee {assignee!r}")
            assignment = {"ticket_id": ticket_id, "assignee": assignee, "status": "active"}
            return cls._insert(db, "assignments", assignment, "active")

        return run

    @classmethod
    def notify(cls, ticket_id: int, channel: str, message: str) -> Action:
        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            cls._ticket(db, ticket_id)
            notice = {"ticket_id": ticket_id, "channel": channel, "message": message}
            return cls._insert(
                db, "notifications", {**notice, "kind": "notice", "created_at": _now()}, "sent"
            )

        return run

    @classmethod
    def retract(cls, notification_id: int) -> Action:
        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            row = db.execute(
                "SELECT ticket_id, channel FROM notifications WHERE id = ? AND kind = 'notice'",
                (notification_id,),
            ).fetchone()
            if row is None:
                raise ServiceError(404, f"no notification {notification_id}")
            done = db.execute(
                "SELECT id FROM notifications WHERE retracts = ?", (notification_id,)
            ).fetchone()
            if done is not None:
                return 200, {"id": done["id"], "status": "retracted"}
            retraction = {
                "ticket_id": row["ticket_id"],
                "channel": row["channel"],
                "message": "retracted",
                "kind": "retraction",
                "retracts": notification_id,
                "created_at": _now(),
            }
            return cls._insert(db, "notifications", retraction, "retracted")

        return run

    def undo_route(self, key: str) -> str | None:
        """The route an undo of `key` amounts to (cancel_ticket, ...), if its write landed."""
        with self.connect() as db:
            row = db.execute("SELECT route FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
        return _UNDO_ROUTES.get(row["route"]) if row else None

    @classmethod
    def undo_record(cls, route: str, record_id: int) -> Action:
        """The undo route `route` (cancel_ticket, ...) names, applied to one record."""
        if route == "retract":
            return cls.retract(record_id)
        table, status = _MARKS[route]
        return lambda db: cls._set_status(db, table, record_id, status)

    @classmethod
    def undo(cls, key: str) -> Action:
        """Undo whatever the write under `key` did; a write that never landed never will."""

        def run(db: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            row = db.execute(
                "SELECT route, status_code, response FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, '', 409, ?, ?)",
                    (key, TOMBSTONE, json.dumps({"detail": "undone before it was done"}), _now()),
                )
                return 200, {"id": 0, "status": "never_done"}
            undo_route = _UNDO_ROUTES.get(row["route"])
            if undo_route is None or not 200 <= row["status_code"] < 300:
                return 200, {"id": 0, "status": "nothing_to_undo"}
            return cls.undo_record(undo_route, json.loads(row["response"])["id"])(db)

        return run

    def ticket_view(self, ticket_id: int) -> dict[str, Any]:
        with self.connect() as db:
            ticket = dict(self._ticket(db, ticket_id))
            for table in ("subtasks", "assignments", "notifications"):
                rows = db.execute(f"SELECT * FROM {table} WHERE ticket_id = ?", (ticket_id,))
                ticket[table] = [dict(r) for r in rows]
        return ticket
