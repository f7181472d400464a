"""What every command shares: the connected client, exit codes and one-line errors."""

from __future__ import annotations

import sys

from temporalio.client import (
    Client,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from keel.cli.budgets import budget_gated
from keel.cli.render import default_ui_url, refusal, root_cause, ui_link
from keel.infra.settings import KeelSettings, TemporalSettings

EXIT_OK = 0


EXIT_FAILED = 1


EXIT_USAGE = 2


EXIT_UNREACHABLE = 3


EXIT_REFUSED = 4  # the flow refused the caller (clearance, an undeclared namespace, a path)


class Context:
    def __init__(self, client: Client, temporal: TemporalSettings, keel: KeelSettings) -> None:
        # Every run it starts is checked against its tenant's budget first (keel/cli/budgets.py).
        self.client = budget_gated(client, keel)
        self.temporal = temporal
        self.keel = keel

    def link(self, workflow_id: str, run_id: str | None) -> str:
        ui_url = self.keel.ui_url or default_ui_url(self.temporal.address)
        return ui_link(ui_url, self.temporal.namespace, workflow_id, run_id)


def err(message: str) -> None:
    sys.stdout.flush()  # keep the order of stdout and stderr lines on one terminal
    print(message, file=sys.stderr, flush=True)


def failed_run(
    failure: WorkflowFailureError,
    what: str,
    link: str | None = None,
    refused_code: int = EXIT_REFUSED,
) -> int:
    """Say why a run ended in failure and return the exit code: a refusal (the flow
    turned the caller away) or the root cause, then where to look (`link`)."""
    reason = refusal(failure)
    if reason is not None:
        err(f"{what} refused: {reason}")
        return refused_code
    err(f"{what} failed: {root_cause(failure)}")
    if link is not None:
        err(f"Web UI: {link}")
    return EXIT_FAILED


class UsageError(ValueError):
    """Arguments the parser cannot judge alone: one line, exit 2, and no run started."""


def is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND
