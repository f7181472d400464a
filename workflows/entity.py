"""The run of an entity workflow: it lives on its updates, and carries its state on.

A breaker, a rate limit and a tenant's day each hold state that every worker reads
and writes through updates; the run itself only waits. When the history grows long
enough that the server suggests it, and no update is half done, the run continues
as new with its state, on the current build (it was pinned to its own while it ran).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from temporalio import workflow


async def carry_on(next_start: Callable[[], Any]) -> NoReturn:
    """Wait for the server's suggestion, then continue as new with `next_start()`."""
    await workflow.wait_condition(
        lambda: workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished()
    )
    workflow.continue_as_new(
        next_start(),
        initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
    )
