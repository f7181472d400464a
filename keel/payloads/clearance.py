"""Who may read what: the three clearance levels, in order."""

from __future__ import annotations

from typing import Literal

SecurityLevel = Literal["public", "internal", "restricted"]


CLEARANCE_RANK: dict[SecurityLevel, int] = {"public": 0, "internal": 1, "restricted": 2}


def may_read(clearance: SecurityLevel, level: SecurityLevel) -> bool:
    """A caller reads what is at or below its clearance, never above."""
    return CLEARANCE_RANK[clearance] >= CLEARANCE_RANK[level]
