"""Reads of the ticket service's own database: the ground truth of what landed.

Logs and workflow results say what the code believes; the service's tables say
what happened. A saga is found by its description (unique per run) and by its
idempotency keys (`<workflow id>:<step>`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SagaRecords:
    """Everything the service holds for one saga."""

    tickets: int
    open_tickets: int
    subtasks: int
    open_subtasks: int
    duplicate_subtasks: int
    assignments: int
    active_assignments: int
    notices: int
    retractions: int
    keys: list[str]

    def duplicates(self) -> list[str]:
        found = []
        if self.tickets > 1:
            found.append(f"{self.tickets} tickets")
        if self.duplicate_subtasks:
            found.append(f"{self.duplicate_subtasks} repeated subtasks")
        if self.assignments > 1:
            found.append(f"{self.assignments} assignments")
        if self.notices > 1:
            found.append(f"{self.notices} notices")
        return found

    def left_behind(self) -> list[str]:
        """What a saga that ended without completing still has live."""
        found = []
        if self.open_tickets:
            found.append(f"{self.open_tickets} open ticket(s)")
        if self.open_subtasks:
            found.append(f"{self.open_subtasks} open subtask(s)")
        if self.active_assignments:
            found.append(f"{self.active_assignments} active assignment(s)")
        if self.notices > self.retractions:
            found.append(f"{self.notices - self.retractions} notice(s) not retracted")
        return found

    def missing(self, subtasks: int) -> list[str]:
        """What a completed saga should have live and has not."""
        found = []
        if self.open_tickets != 1:
            found.append(f"{self.open_tickets} open tickets, not 1")
        if self.open_subtasks != subtasks:
            found.append(f"{self.open_subtasks} open subtasks, not {subtasks}")
        if self.active_assignments != 1:
            found.append(f"{self.active_assignments} active assignments, not 1")
        if self.notices - self.retractions != 1:
            found.append(f"{self.notices - self.retractions} live notices, not 1")
        return found


class Ledger:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if not self.db_path.exists():
            return []
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(sql, args).fetchall()

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query, sql, *args)

    async def committed(self, key: str) -> bool:
        return bool(await self.query("SELECT 1 FROM idempotency_keys WHERE key = ?", key))

    async def wait_committed(self, key: str) -> None:
        """The service's database has no change feed: poll it (bound it with a timeout)."""
        while True:
            if await self.committed(key):
                return
            await asyncio.sleep(0.05)

    async def saga(self, workflow_id: str, description: str) -> SagaRecords:
        return await asyncio.to_thread(self._saga, workflow_id, description)

    def _saga(self, workflow_id: str, description: str) -> SagaRecords:
        ids = [
            r[0] for r in self._query("SELECT id FROM tickets WHERE description = ?", description)
        ]
        marks = ",".join("?" * len(ids)) or "NULL"

        def count(sql: str) -> int:
            return int(self._query(sql.format(ids=marks), *ids)[0][0])

        repeated = self._query(
            f"SELECT COUNT(*) - COUNT(DISTINCT ticket_id || ':' || title) FROM subtasks"
            f" WHERE ticket_id IN ({marks})",
            *ids,
        )
        keys = [
            str(r[0])
            for r in self._query(
                "SELECT key FROM idempotency_keys WHERE key LIKE ? ORDER BY created_at",
                f"{workflow_id}:%",
            )
        ]
        return SagaRecords(
            tickets=len(ids),
            open_tickets=count(
                "SELECT COUNT(*) FROM tickets WHERE id IN ({ids}) AND status='open'"
            ),
            subtasks=count("SELECT COUNT(*) FROM subtasks WHERE ticket_id IN ({ids})"),
            open_subtasks=count(
                "SELECT COUNT(*) FROM subtasks WHERE ticket_id IN ({ids}) AND status='open'"
            ),
            duplicate_subtasks=int(repeated[0][0] or 0) if repeated else 0,
            assignments=count("SELECT COUNT(*) FROM assignments WHERE ticket_id IN ({ids})"),
            active_assignments=count(
                "SELECT COUNT(*) FROM assignments WHERE ticket_id IN ({ids}) AND status='active'"
            ),
            notices=count(
                "SELECT COUNT(*) FROM notifications WHERE ticket_id IN ({ids}) AND kind='notice'"
            ),
            retractions=count(
                "SELECT COUNT(*) FROM notifications WHERE ticket_id IN ({ids})"
                " AND kind='retraction'"
            ),
            keys=keys,
        )
