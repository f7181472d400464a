"""`client.py reconcile [<run> [--call N done|retry|undo]]`: side effects whose outcome
was lost, shown and resolved by an operator.

Without a run: every run waiting in `needs_reconciliation`, with its call. With a
run: its at-most-once calls and what became of each. With `--call N` and a word:
the operator's answer - `done` (it took effect; the run goes on), `retry` (it did
not; send it once more) or `undo` (run its compensation, then go on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, get_args

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err
from keel.payloads.side_effects import Reconciliation, Resolution, SideEffectCall, reconcile_refusal

WAITING = 'ExecutionStatus = "Running" AND ResearchStatus = "needs_reconciliation"'
RESOLUTIONS = list(get_args(Resolution))


class CallAnswer(argparse.Action):
    """`--call N [done|retry|undo]`, checked before anything connects: (N, word or None)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        words = [str(v) for v in values or []]
        if len(words) > 2 or not words[0].isdigit() or int(words[0]) < 1:
            raise argparse.ArgumentError(
                self, f"takes N and one of {'|'.join(RESOLUTIONS)}, not {' '.join(words)!r}"
            )
        if len(words) == 2 and words[1] not in RESOLUTIONS:
            raise argparse.ArgumentError(
                self, f"{words[1]!r} is not one of {'|'.join(RESOLUTIONS)}"
            )
        setattr(namespace, self.dest, (int(words[0]), words[1] if len(words) == 2 else None))


async def cmd_reconcile(ctx: Context, args: argparse.Namespace) -> int:
    if args.workflow_id is None:
        if args.call is not None:
            err("error: --call N names a call of one run: reconcile <run> --call N done|retry|undo")
            return EXIT_USAGE
        return await _list_waiting(ctx, args)
    answer: tuple[int, Resolution | None] = args.call or (0, None)
    progress = await _progress(ctx, args.workflow_id)
    if isinstance(progress, str):
        err(progress)
        return EXIT_USAGE
    calls = [SideEffectCall.model_validate(c) for c in progress.get("side_effects") or []]
    number, resolution = answer
    if resolution is None:
        shown = [_call(c) for c in calls if args.call is None or c.call == number]
        print(json.dumps(shown, indent=2, default=str) if args.json else _lines(shown))
        return EXIT_OK
    decision = Reconciliation(call=number, resolution=resolution, by=args.by, reason=args.reason)
    reason = reconcile_refusal(calls, decision)
    if reason is not None:
        err(f"reconcile refused: {reason}")
        return EXIT_USAGE
    try:
        resolved = await ctx.client.get_workflow_handle(args.workflow_id).execute_update(
            "reconcile_call", decision
        )
    except WorkflowUpdateFailedError as failure:
        err(f"reconcile refused: {failure.cause}")  # answered meanwhile, by someone else
        return EXIT_FAILED
    print(json.dumps({"resolution": resolution, **_call(resolved)}, indent=2, default=str))
    return EXIT_OK


async def _progress(ctx: Context, workflow_id: str) -> dict[str, Any] | str:
    """The run's progress query, or the one-line reason there is none to show."""
    handle = ctx.client.get_workflow_handle(workflow_id)
    try:
        progress = await handle.query("progress", rpc_timeout=timedelta(seconds=10))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return f"error: no run {workflow_id!r}"
        return f"error: {workflow_id} does not answer: {error.message.splitlines()[0][:200]}"
    except Exception as error:  # a run of another type: one line, not a trace
        return (
            f"error: {workflow_id} has no side-effect calls to reconcile ({type(error).__name__})"
        )
    if not isinstance(progress, dict) or "side_effects" not in progress:
        return f"error: {workflow_id} is not an agent run; it has no calls to reconcile"
    return progress


async def _list_waiting(ctx: Context, args: argparse.Namespace) -> int:
    found = [wf async for wf in ctx.client.list_workflows(WAITING, limit=args.limit)]
    progresses = await asyncio.gather(*(_progress(ctx, wf.id) for wf in found))
    rows = []
    for wf, progress in zip(found, progresses, strict=True):
        waiting = progress.get("needs_reconciliation") if isinstance(progress, dict) else None
        rows.append({"workflow_id": wf.id, "call": _call(waiting) if waiting else None})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    for row in [] if args.json else rows:
        wid, waiting = row["workflow_id"], row["call"]
        if not isinstance(waiting, dict):
            print(f"{wid}  (its worker does not answer now)")
            continue
        print(f"{wid}  {_lines([waiting])}")
        print(f"  client.py reconcile {wid} --call {waiting['call']} done|retry|undo")
    err(f"{len(rows)} run(s) need reconciliation")
    return EXIT_OK


def _call(call: Any) -> dict[str, Any]:
    return call if isinstance(call, dict) else dict(call.model_dump(mode="json"))


def _lines(calls: list[dict[str, Any]]) -> str:
    lines = []
    for c in calls:
        arguments = json.dumps(c["arguments"], ensure_ascii=False)[:200]
        line = f"call {c['call']}: {c['tool']}({arguments})  {c['status']}  key {c['key']}"
        if c.get("status") == "needs_reconciliation" and c.get("error"):
            line += f"  ({c['error'][:120]})"
        lines.append(line)
    return "\n".join(lines) or "(no at-most-once calls)"
