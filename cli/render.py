"""Plain-text rendering of reports and progress for a terminal."""

from __future__ import annotations

import textwrap
from urllib.parse import quote

from models.research import ResearchProgress, ResearchReport


def ui_link(ui_url: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    base = f"{ui_url.rstrip('/')}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, '')}"
    return f"{base}/{run_id}/history" if run_id else base


def progress_line(progress: ResearchProgress) -> str:
    return (
        f"[{progress.status}] node={progress.node} iteration={progress.iteration}"
        f" refinements={progress.refinements} revisions={progress.revisions}"
        f" reasks={progress.reasks} evidence={progress.evidence}"
        f" llm_calls={progress.usage.calls}"
        f" tokens={progress.usage.tokens_in}+{progress.usage.tokens_out}"
        f" cost=${progress.usage.cost_usd:.6f}"
    )


def report_text(report: ResearchReport) -> str:
    lines = [f"Question: {report.question}", "", "Answer:"]
    lines += textwrap.wrap(report.answer, 88, initial_indent="  ", subsequent_indent="  ")
    lines += ["", "Citations:"]
    if not report.citations:
        lines.append("  (none)")
    for c in report.citations:
        excerpt = textwrap.shorten(c.passage, 160, placeholder=" ...")
        lines.append(f"  [{c.number}] {c.chunk_id} - {c.title}")
        lines.append(f"      {excerpt}")
    verdict = "passed" if report.review_passed else "not passed"
    score = f", score {report.review_score}/5" if report.review_score is not None else ""
    lines += [
        "",
        f"Review: {verdict}{score}; plan rounds {report.iterations},"
        f" refinements {report.refinements}, re-asks {report.reasks}",
    ]
    if report.flags:
        lines.append(f"Flags: {', '.join(report.flags)}")
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
    if report.prompts:
        lines.append("Prompts: " + ", ".join(f"{k}@{v}" for k, v in sorted(report.prompts.items())))
    return "\n".join(lines)
