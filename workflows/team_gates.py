"""The team's `workflow.patched` gates, in one place.

A patch marker is recorded in the workflow task where `workflow.patched` is first
called for its id, and a replay looks for it there: moving a first call to another
step breaks the replay of every run that recorded it. So each gate is read by one
method, and the coordinator calls each method at the step of the run where that
gate was first read when it was added (the method's docstring says which). The SDK
memoizes the answers, so reading a gate again later records nothing.

A run started on today's code records two markers, `progress-in-current-details`
and `team-grounded-answers`, both in its first task; older runs replay through the
gates they recorded (tests/histories/team_*.json). A run forked by `client.py fork`
(a reset) records `team-fork-seeds:<child>` where it starts a child again.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

PROGRESS_PATCH = "progress-in-current-details"
"""One marker for every change before it: a run started with it checks drafts, covers
topics, refuses without a readable namespace, and shows its stage in the Web UI's
current details instead of a search-attribute upsert per stage. Runs started before it
replay through the two patches it stands for."""

CHECKS_PATCH = "team-draft-checks-and-topics"
"""Runs started before this patch plan as the model said and review every draft."""

GROUNDED_PATCH = "team-grounded-answers"
"""Runs started with it drop sub-questions no researcher can take, say so when the
documents hold nothing about the request instead of writing a report from unrelated
passages, and deliver an extract (where the contract allows) rather than a draft the
rubric rejected at the round limit."""

NAMESPACE_PATCH = "refuse-without-readable-namespace"
"""Runs started before this patch planned and researched with no namespace at all."""

FORK_SEEDS_PATCH = "team-fork-seeds"
"""One per child (`team-fork-seeds:-writer-2`): a reset run that starts the child with
it hands the child its original outcomes before the fork point (keel/cli/fork.py) instead
of running them. Only a reset run records it, so a run as started has none."""


@dataclass
class TeamGates:
    """What one team run was started with; each field is False until its gate is read."""

    in_details: bool = False
    """`PROGRESS_PATCH`: stage and status in the current details, not upserts."""
    checked: bool = False
    """`CHECKS_PATCH` (or `PROGRESS_PATCH`): drafts meet the checks, topics are covered."""
    grounded: bool = False
    """`GROUNDED_PATCH`: real sub-questions, not-in-corpus, the extract at the bound."""

    def read_first(self) -> None:
        """The first step of the run, before its status is first shown."""
        self.in_details = workflow.patched(PROGRESS_PATCH)

    def read_after_status(self) -> None:
        """The first task, after the status is first shown, before the contracts load.

        In a run started before `PROGRESS_PATCH`, the status is a search-attribute
        upsert, recorded before the `CHECKS_PATCH` marker.
        """
        self.checked = self.in_details or workflow.patched(CHECKS_PATCH)
        self.grounded = workflow.patched(GROUNDED_PATCH)

    def refuses_without_namespace(self) -> bool:
        """Read only when the data route found no readable namespace, in the task after
        the contracts loaded; a run started with `PROGRESS_PATCH` never reads it."""
        return self.in_details or workflow.patched(NAMESPACE_PATCH)

    def fork_seeds(self, child_id: str) -> bool:
        """Read where a child starts: whether to ask for its recorded outcomes.

        Only a reset run asks (its run id is not its chain's first). A replay asks where
        the marker is, and only there: a replayer does not know the run's own id. One
        gate per child, because a child started before the reset point replays without
        one, and the SDK's memo of that answer must not decide for the child the reset
        step starts again.
        """
        patch = f"{FORK_SEEDS_PATCH}:{child_id.removeprefix(workflow.info().workflow_id)}"
        if workflow.unsafe.is_replaying():
            return workflow.patched(patch)
        info = workflow.info()
        return info.run_id != info.first_execution_run_id and workflow.patched(patch)
