"""The ticket service as a real process, and direct reads of its database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.testing.ports import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Audit:
    """What the database holds for one incident (one description)."""

    tickets: int
    open_tickets: int
    open_subtasks: int
    deleted_subtasks: int
    active_assignments: int
    revoked_assignments: int
    notices: int
    retractions: int

    @property
    def duplicates(self) -> int:
        return max(self.tickets - 1, 0)

    @property
    def orphans(self) -> int:
        """Live records hanging off a cancelled ticket, or notices never retracted."""
        if self.open_tickets:
            return 0
        return self.open_subtasks + self.active_assignments + (self.notices - self.retractions)


class TicketService:
    def __init__(self, db_path: Path, token: str | None = None) -> None:
        """`token`: the bearer token it requires; by default the session's KEEL_TICKETS_TOKEN."""
        self.db_path = db_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token or os.environ["KEEL_TICKETS_TOKEN"]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """A call as the worker makes it, with the service's bearer token."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return httpx.post(url, headers=headers, **kwargs)

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keel.services.ticket_service",
                "--port",
                str(self.port),
                "--db",
                str(self.db_path),
                "--faults",
            ],
            cwd=ROOT,
            env={**os.environ, "KEEL_TICKETS_TOKEN": self.token},
        )
        wait_until_serving(f"{self.url}/health", "ticket service")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                # A request held by an injected fault keeps it from stopping gracefully.
                self._process.kill()
                self._process.wait(10)

    def fault(self, route: str, **settings: Any) -> None:
        response = self.post(f"{self.url}/_faults", json={"route": route, **settings})
        response.raise_for_status()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def audit(self, description: str) -> Audit:
        ids = [
            r[0] for r in self.query("SELECT id FROM tickets WHERE description = ?", description)
        ]
        marks = ",".join("?" * len(ids)) or "NULL"

        def count(sql: str) -> int:
            return int(self.query(sql.format(ids=marks), *ids)[0][0])

        return Audit(
            tickets=len(ids),
            open_tickets=count(
                "SELECT COUNT(*) FROM tickets WHERE id IN ({ids}) AND status='open'"
            ),
            open_subtasks=count(
                "SELECT COUNT(*) FROM subtasks WHERE ticket_id IN ({ids}) AND status='open'"
            ),
            deleted_subtasks=count(
                "SELECT COUNT(*) FROM subtasks WHERE ticket_id IN ({ids}) AND status='deleted'"
            ),
            active_assignments=count(
                "SELECT COUNT(*) FROM assignments WHERE ticket_id IN ({ids}) AND status='active'"
            ),
            revoked_assignments=count(
                "SELECT COUNT(*) FROM assignments WHERE ticket_id IN ({ids}) AND status='revoked'"
            ),
            notices=count(
                "SELECT COUNT(*) FROM notifications WHERE ticket_id IN ({ids}) AND kind='notice'"
            ),
            retractions=count(
                "SELECT COUNT(*) FROM notifications WHERE ticket_id IN ({ids})"
                " AND kind='retraction'"
            ),
        )
