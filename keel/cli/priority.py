"""Which runs go first on a busy queue, and whose turn it is: Temporal's task priority.

A run's `Priority` is set where it starts (the CLI, a schedule, the evaluation) and
nowhere else: the server hands it on to every activity and child workflow the run
schedules that does not set its own (keel's workflows set none), so a team's agents
and every model call they make queue as the request that started them. It orders the
tasks of one task queue only: the model calls of the `llm` queue, where runs wait for a
model slot, are where it shows.

- `priority_key` (1 goes first, 5 last, 3 for anything started without one): people
  waiting at a terminal ahead of batch work (an evaluation, a scheduled run).
- `fairness_key`: the tenant. Within one priority, the server dispatches each key's
  tasks in proportion to its weight, so one tenant's backlog cannot hold another's
  runs behind it (a server setting turns this on: docs/operations.md).
"""

from __future__ import annotations

import argparse
from enum import StrEnum

from temporalio.common import Priority

from keel.cli.arg_types import within
from keel.rules.tenants import TENANT_NAME


class WorkClass(StrEnum):
    """Who is waiting for a run: a person at a terminal, or nobody in particular."""

    INTERACTIVE = "interactive"  # research, start, ask, agent, incident from the CLI
    BATCH = "batch"  # the evaluation, runs a schedule starts


# 1 stays free for an operator's urgent run (--priority 1), 5 for background work.
PRIORITY_KEYS = {WorkClass.INTERACTIVE: 2, WorkClass.BATCH: 4}
HIGHEST, LOWEST = 1, 5
# The server clamps weights to this range; outside it a weight would be silently changed.
LIGHTEST, HEAVIEST = 0.001, 1000.0


def checked_tenant(text: str) -> str:
    """A tenant name, refused at once when the server would refuse or change it."""
    if not TENANT_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"not a tenant name: {text!r} (1-64 letters, digits, '.', '_' or '-')"
        )
    return text


def priority_key(text: str) -> int:
    return within(text, int, HIGHEST, LOWEST, f"{HIGHEST} (first) to {LOWEST} (last)")


def fairness_weight(text: str) -> float:
    return within(text, float, LIGHTEST, HEAVIEST, f"{LIGHTEST} to {HEAVIEST:g}")


def add_priority_args(p: argparse.ArgumentParser) -> None:
    """--tenant, --priority and --fairness-weight of every command that starts a flow."""
    p.add_argument(
        "--tenant",
        type=checked_tenant,
        help="whose run this is: the fairness key (default: KEEL_TENANT)",
    )
    p.add_argument(
        "--priority",
        type=priority_key,
        help=f"{HIGHEST} goes first, {LOWEST} last (default: {PRIORITY_KEYS[WorkClass.INTERACTIVE]}"
        f" from a terminal, {PRIORITY_KEYS[WorkClass.BATCH]} on a schedule)",
    )
    p.add_argument(
        "--fairness-weight",
        type=fairness_weight,
        help="the tenant's share against others of the same priority (default 1)",
    )


def run_priority(
    work: WorkClass,
    tenant: str,
    key: int | None = None,
    weight: float | None = None,
) -> Priority:
    """The priority a run starts with: its class's key unless one is given, its tenant."""
    return Priority(
        priority_key=key if key is not None else PRIORITY_KEYS[work],
        fairness_key=tenant,
        fairness_weight=weight,
    )
