"""Plain-text rendering of reports and progress for a terminal."""

from __future__ import annotations

import json
import re
import textwrap
from urllib.parse import quote

from pydantic import BaseModel
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TimeoutError,
)

from keel.infra.settings import UI_PORT_OFFSET
from keel.payloads.agents import AgentResult
from keel.payloads.coordinator import CoordinatorProgress, MultiAgentReport
from keel.payloads.errors import REFUSALS
from keel.payloads.live import research_line, team_line
from keel.payloads.llm import Usage
from keel.payloads.research import ResearchProgress, ResearchReport
from keel.payloads.routing import AskResult
from keel.payloads.tickets import TicketSagaResult


def default_ui_url(address: str) -> str:
    """The dev server's Web UI for a frontend address: same host, port + 1000."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"http://{address}:8233"
    return f"http://{host}:{int(port) + UI_PORT_OFFSET}"


def ui_link(ui_url: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    base = f"{ui_url.rstrip('/')}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, '')}"
    return f"{base}/{run_id}/history" if run_id else base


ROOT_CAUSE_CHARS = 300
# Anything shaped like a key or a bearer token is cut from what a terminal shows.
_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})")


def root_cause(error: BaseException) -> str:
    """The innermost failure of a chain in one line, and where it happened.

    Temporal wraps a failure once per layer (workflow, child, activity), so the
    outer messages say only "Activity task failed"; the user needs the inside one.
    """
    where = ""
    current: BaseException | None = error
    innermost = error
    while current is not None:
        if isinstance(current, ActivityError):
            where = f"in {current.activity_type}"
        elif isinstance(current, ChildWorkflowError):
            where = f"in {current.workflow_type} {current.workflow_id}"
        innermost = current
        current = current.__cause__
    if isinstance(innermost, ApplicationError) and innermost.type:
        text = f"{innermost.type}: {innermost.message}"
    elif isinstance(innermost, TimeoutError) and innermost.type is not None:
        text = f"{innermost.type.name.removeprefix('TIMEOUT_TYPE_').lower()} timeout"
    elif isinstance(innermost, CancelledError):
        text = "cancelled"
    else:
        text = str(innermost) or type(innermost).__name__
    line = " ".join(_SECRET.sub("***", text).split())[:ROOT_CAUSE_CHARS]
    return f"{line} ({where})" if where else line


def _opening(asked: str, heading: str, answer: str) -> list[str]:
    """What was asked, the answer wrapped for a terminal, and the citations' heading."""
    wrapped = textwrap.wrap(answer, 88, initial_indent="  ", subsequent_indent="  ")
    return [asked, "", f"{heading}:", *wrapped, "", "Citations:"]


def refusal(error: BaseException) -> str | None:
    """The reason, in one line, when a flow failed because it refused the caller."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ApplicationError) and current.type in REFUSALS:
            return " ".join(_SECRET.sub("***", current.message).split())[:ROOT_CAUSE_CHARS]
        current = current.__cause__
    return None


def progress_line(progress: ResearchProgress) -> str:
    return research_line(progress)


def report_text(report: ResearchReport) -> str:
    lines = _opening(f"Question: {report.question}", "Answer", report.answer)
    if not report.citations:
        lines.append("  (none)")
    for c in report.citations:
        excerpt = textwrap.shorten(c.passage, 160, placeholder=" ...")
        lines.append(f"  [{c.number}] {c.chunk_id} - {c.title}")
        lines.append(f"      {excerpt}")
    verdict = "passed" if report.review_passed else "not passed"
    score = f", score {report.review_score}/5" if report.review_score is not None else ""
    if report.review is not None:
        r = report.review
        sign = ">=" if r.passed else "<"
        scores = ", ".join(f"{s.criterion} {s.score}" for s in r.scores)
        score = f", rubric {r.rubric} {r.weighted_score} {sign} {r.threshold} ({scores})"
    if report.extractive:
        verdict = "none: the answer is an extract of the passages, no draft passed the checks"
    lines += [
        "",
        f"Review: {verdict}{score}; plan rounds {report.iterations},"
        f" refinements {report.refinements}, re-asks {report.reasks}",
    ]
    lines += _flags(report.flags)
    u = report.usage
    lines.append(
        f"Model: {report.provider}/{report.model}; {u.calls} calls,"
        f" {u.tokens_in} tokens in, {u.tokens_out} out, ${u.cost_usd:.6f},"
        f" {u.latency_ms / 1000:.1f} s in the model"
    )
    for fallback in report.fallbacks:
        lines.append(
            f"Fallback at {fallback.node}: {fallback.from_model} -> {fallback.to_model}"
            f" ({fallback.reason})"
        )
    lines += _prompts(report.prompts)
    return "\n".join(lines)


def _prompts(prompts: dict[str, str]) -> list[str]:
    """The line that names each prompt template's version, if the run used any."""
    return (
        ["Prompts: " + ", ".join(f"{k}@{v}" for k, v in sorted(prompts.items()))] if prompts else []
    )


def _usage(u: Usage) -> str:
    return (
        f"Usage: {u.calls} model calls, {u.tokens_in} tokens in, {u.tokens_out} out,"
        f" ${u.cost_usd:.6f}"
    )


def _flags(flags: list[str]) -> list[str]:
    """The line that lists a report's flags, if it has any."""
    return [f"Flags: {', '.join(flags)}"] if flags else []


def team_progress_line(progress: CoordinatorProgress) -> str:
    return team_line(progress)


def team_report_text(report: MultiAgentReport) -> str:
    lines = _opening(f"Request: {report.request}", "Report", report.answer)
    lines += [f"  [{c.number}] {c.passage_id}" for c in report.citations] or ["  (none)"]
    lines += ["", f"Researchers ({len(report.researchers)}, in parallel):"]
    for r in report.researchers:
        refused = f", {len(r.refusals)} tool call(s) refused" if r.refusals else ""
        lines.append(
            f"  {r.workflow_id}: {r.status}, {r.turns} turns, {len(r.passages)} passages{refused}"
            f" - {r.question}"
        )
    lines += ["", f"Review rounds (rubric {report.rubric!r}):"]
    for rnd in report.rounds:
        scores = ", ".join(f"{s.criterion} {s.score}" for s in rnd.scores) or "unscored"
        verdict = "pass" if rnd.passed else "fail"
        weighted = f"{rnd.weighted_score:.2f}" if rnd.weighted_score is not None else "-"
        lines.append(f"  {rnd.round} ({rnd.trigger}): {scores}; weighted {weighted}, {verdict}")
    route = report.data_route
    lines.append(f"Data: {route.language}, namespaces {', '.join(route.namespaces) or '(none)'}")
    if report.decision:
        lines.append(f"Decision: {report.decision}")
    lines += [*_flags(report.flags), _usage(report.usage)]
    lines.append("Contracts: " + ", ".join(f"{k} {v}" for k, v in report.contract_versions.items()))
    return "\n".join(lines)


def ask_text(answer: AskResult) -> str:
    decision = answer.decision
    rule = f": {decision.rule}" if decision.rule else ""
    head = f"Intent: {decision.intent or '-'} ({decision.method}{rule})"
    if answer.refused:
        return f"{head}\nRefused: {answer.message}"
    body = ""
    data = answer.result or {}
    if decision.flow == "research" and data:
        body = report_text(ResearchReport.model_validate(data))
    elif decision.flow == "report" and data:
        body = team_report_text(MultiAgentReport.model_validate(data))
    elif decision.flow == "agent" and data:
        body = agent_text(AgentResult.model_validate(data))
    elif decision.flow == "incident" and data:
        body = saga_text(TicketSagaResult.model_validate(data))
    else:
        body = f"Answer: {answer.message}"
    return f"{head}\n{body}"


def saga_text(saga: TicketSagaResult) -> str:
    return (
        f"Incident ticket {saga.ticket_id}: {saga.outcome} ({saga.triage.severity},"
        f" {saga.triage.title}); subtasks {saga.subtask_ids};"
        f" decision {saga.decision.decision} by {saga.decision.by}"
    )


def agent_text(result: AgentResult) -> str:
    """An agent's output field by field, then its tool calls, flags and usage."""
    head = f"Agent: {result.agent} (role {result.role}), {result.turns} turns, {result.runs} run(s)"
    lines = [head]
    lines.append(f"Output ({result.output_schema}):")
    for field, value in (result.output or {}).items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += textwrap.wrap(
            f"{field}: {shown}", 88, initial_indent="  ", subsequent_indent="    "
        ) or [f"  {field}:"]
    if result.output is None:
        lines.append("  (none: no valid output within the re-asks)")
    calls = [d for d in result.decisions if d.requested]
    if calls:
        lines.append("Tools:")
        for d in calls:
            verdict = "allowed" if d.allowed else f"refused: {d.reason}"
            lines.append(f"  turn {d.turn}: {d.requested} {verdict}")
    lines += [*_flags(result.flags), _usage(result.usage), *_prompts(result.prompts)]
    return "\n".join(lines)


def result_text(result: BaseModel) -> str:
    """Any flow's result as a terminal shows it; a type with no renderer as JSON."""
    if isinstance(result, ResearchReport):
        return report_text(result)
    if isinstance(result, MultiAgentReport):
        return team_report_text(result)
    if isinstance(result, AskResult):
        return ask_text(result)
    if isinstance(result, TicketSagaResult):
        return saga_text(result)
    if isinstance(result, AgentResult):
        return agent_text(result)
    return result.model_dump_json(indent=2)
