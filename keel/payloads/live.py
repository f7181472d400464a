"""What a run publishes to its live channel while it runs, and how it reads as one line.

A run's channel is the SDK's workflow stream (temporalio.contrib.workflow_streams):
steps are appended by the workflow itself, so they cost no history events; token
deltas come from the model activity as batched signals, so a run publishes them only
when its input asks (`stream_tokens`), and only for calls whose output a watcher shows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from keel.payloads.coordinator import CoordinatorProgress
from keel.payloads.outputs import OUTPUT_MODELS
from keel.payloads.research import ResearchProgress

LIVE_TOPIC = "live"
# Output fields a watcher shows as they are written; other calls' output (a plan, a
# score) reaches it as step lines, so their deltas are not published at all.
SHOWN_FIELDS = ("answer", "summary")

EventKind = Literal["node", "step", "child", "tokens", "reset", "done"]


class LiveEvent(BaseModel):
    """One line of a run's story, or a piece of a model call's output.

    `node` and `step` are lines to show as they are; `child` names a child workflow a
    watcher follows too, under `role`; `tokens` is text a model call (`call`) wrote
    since its last delta; `reset` says the call's partial output is void (a retry or a
    re-ask follows), so a watcher drops it instead of gluing two attempts together;
    `done` is the call's accepted output in full, published by the workflow once the
    call returned, so a watcher completes the text without waiting for the last deltas.
    """

    kind: EventKind
    text: str = ""
    node: str = ""
    call: str = ""
    role: str = ""
    workflow_id: str = ""


def shown_as_written(output_schema: str) -> bool:
    """Whether a watcher shows this output model's text while the model writes it."""
    model = OUTPUT_MODELS.get(output_schema)
    return model is not None and any(name in model.model_fields for name in SHOWN_FIELDS)


def research_line(progress: ResearchProgress) -> str:
    """The research flow's progress as the one line a terminal shows per node."""
    return (
        f"[{progress.status}] node={progress.node} iteration={progress.iteration}"
        f" refinements={progress.refinements} revisions={progress.revisions}"
        f" reasks={progress.reasks} evidence={progress.evidence}"
        f" llm_calls={progress.usage.calls}"
        f" tokens={progress.usage.tokens_in}+{progress.usage.tokens_out}"
        f" cost=${progress.usage.cost_usd:.6f}"
    )


def team_line(progress: CoordinatorProgress) -> str:
    """The team's progress as one line: stage, researchers done, review scores so far."""
    done = sum(1 for r in progress.researchers if r.status == "done")
    scores = ",".join(
        f"{r.weighted_score:.1f}" if r.weighted_score is not None else "-" for r in progress.rounds
    )
    return (
        f"[{progress.status}] stage={progress.stage}"
        f" researchers={done}/{len(progress.researchers)} rounds={len(progress.rounds)}"
        f" scores=[{scores}] llm_calls={progress.usage.calls}"
        f" tokens={progress.usage.tokens_in}+{progress.usage.tokens_out}"
    )
