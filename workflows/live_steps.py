"""The lines flows publish to their live channel, kept out of the flows' own modules.

Each helper is one call at the place it describes, so a flow's code reads as before.
Lines carry counts, scores, titles and reasons, never prompt text or passages.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.coordinator import CoordinatorProgress
    from keel.payloads.documents import Passage
    from keel.payloads.live import research_line, team_line
    from keel.payloads.research import ResearchProgress
    from keel.payloads.routing import IntentDecision
    from workflows.live import LiveChannel

TITLES_SHOWN = 3


def research_node(live: LiveChannel, progress: ResearchProgress, release: bool = False) -> None:
    """The research flow's progress line; `release` when the run ends by failing."""
    live.node(progress.node, research_line(progress))
    if release:
        live.release()


def search_step(live: LiveChannel, node: str, hits: list[Passage]) -> None:
    titles = list(dict.fromkeys(p.title for p in hits))
    shown = "; ".join(titles[:TITLES_SHOWN]) + (" ..." if len(titles) > TITLES_SHOWN else "")
    live.step(f"search done: {len(hits)} hit(s)" + (f": {shown}" if shown else ""), node)


def child_started(live: LiveChannel, workflow_id: str) -> None:
    """A child's channel is followed under its id less the parent's: `researcher-1`."""
    parent = workflow.info().workflow_id
    live.child(workflow_id, workflow_id.removeprefix(f"{parent}-"))


def team_stage(live: LiveChannel, progress: CoordinatorProgress, release: bool = False) -> None:
    """The team's progress line (stage, researchers done, review scores so far)."""
    live.node(progress.stage, team_line(progress))
    if release:
        live.release()


def tool_step(live: LiveChannel, tool: str, allowed: bool, detail: str = "") -> None:
    verdict = "allowed" if allowed else "refused"
    live.step(f"tool {tool} {verdict}" + (f": {detail}" if detail else ""), "tool")


def route_line(decision: IntentDecision) -> str:
    """Where the front door sent a request, and by which rule or model."""
    how = f"by {decision.rule}" if decision.rule else f"by the {decision.method}"
    if not decision.allowed:
        return f"intent {decision.intent or '-'} refused ({how}): {decision.reason}"
    return f"intent {decision.intent} -> flow {decision.flow} ({how})"
