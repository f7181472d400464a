"""Comparing a flow without and with one thing (a codec, heartbeats): runs taken in turn.

The overhead benches share it, so their tables open with the same columns and their
figures are computed the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.bench.common import median, ms

Side = TypeVar("Side")
Measured = TypeVar("Measured")


async def side_by_side(
    sides: Sequence[Side],
    runs: int,
    batch: Callable[[Side, int], Awaitable[Measured]],
    batch_size: int = 5,
) -> dict[Side, list[Measured]]:
    """About `runs` runs of each side, in batches taken in turn, so that drift in the
    machine's load falls on every side alike; each side's batch results, in order."""
    batches = max(1, runs // batch_size)
    per_batch = max(1, runs // batches)
    results: dict[Side, list[Measured]] = {side: [] for side in sides}
    for _ in range(batches):
        for side in sides:
            results[side].append(await batch(side, per_batch))
    return results


# The first columns of a table that compares a flow without and with one thing.
ON_OFF_HEADERS = ["model latency", "off wall ms", "on wall ms", "wall difference"]


@dataclass(frozen=True)
class OnOff:
    """One latency's median wall time of a flow without and with the thing measured."""

    latency_ms: int
    off_wall: float
    on_wall: float

    @classmethod
    def of(
        cls, latency_ms: int, off: Sequence[dict[str, Any]], on: Sequence[dict[str, Any]]
    ) -> OnOff:
        """From each side's batches (`side_by_side`), every one with its `walls`."""
        return cls(
            latency_ms,
            median([w for batch in off for w in batch["walls"]]),
            median([w for batch in on for w in batch["walls"]]),
        )

    @property
    def share(self) -> float:
        """What the thing adds, as a share of the wall time without it."""
        return (self.on_wall - self.off_wall) / self.off_wall

    def figures(self) -> dict[str, Any]:
        return {
            "off_wall_ms": ms(self.off_wall),
            "on_wall_ms": ms(self.on_wall),
            "wall_share": round(self.share, 4),
        }

    def cells(self) -> list[str]:
        """A row's first cells, under ON_OFF_HEADERS."""
        return [
            f"{self.latency_ms} ms",
            f"{ms(self.off_wall):.1f}",
            f"{ms(self.on_wall):.1f}",
            f"{self.share:+.1%}",
        ]
