"""The command line of client.py: every command, its arguments and their checks.

Arguments are checked here, before anything connects, so bad input is one line
and exit 2 with nothing started.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, get_args

from keel.cli import (
    agent,
    approvals,
    ask,
    budgets,
    commands,
    fork,
    incident,
    message,
    reconcile,
    run_flow,
    runs_list,
    schedules,
    start,
)
from keel.cli.arg_types import (
    count,
    positive_float,
    positive_int,
    schedule_id,
    workflow_id,
)
from keel.cli.context import EXIT_USAGE, Context
from keel.cli.kinds import TYPE_NAMES
from keel.cli.priority import add_priority_args
from keel.cli.schedule_spec import (
    DEFAULT_CATCHUP,
    Overlap,
    catchup_window,
    cron_expression,
    duration,
    time_zone,
)
from keel.graphs.flows import FLOWS
from keel.infra.settings import KeelSettings
from keel.payloads.clearance import SecurityLevel
from keel.payloads.llm import Provider

PROVIDERS = list(get_args(Provider))

# A command: the connected context and the parsed arguments in, an exit code out.
Run = Callable[[Context, argparse.Namespace], Awaitable[int]]


def _research_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")
    p.add_argument("--request-id", help="idempotent submission: the same id returns the same run")
    p.add_argument("--corpus", default="demo", help="document namespace to search")
    p.add_argument(
        "--clearance",
        choices=list(get_args(SecurityLevel)),
        default="public",
        help="the caller's clearance: a namespace above it is refused (contracts/routes.toml)",
    )
    _model_args(p)
    p.add_argument(
        "--fallback",
        action="append",
        default=[],
        metavar="PROVIDER/MODEL",
        help="next model to try when the one before fails (repeatable)",
    )
    p.add_argument("--max-refinements", type=count, default=2)
    p.add_argument("--max-revisions", type=count, default=2)
    _watched_args(p, "report")


def _ask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("request")
    p.add_argument("--request-id", help="idempotent submission: the same id returns the same run")
    p.add_argument("--clearance", choices=["public", "internal", "restricted"], default="public")
    p.add_argument("--corpus-version", help="pin a document version (default: the newest)")
    _model_args(p, default=None)
    p.add_argument("--require-approval", action="store_true", help="a report waits for a person")
    p.add_argument("--approval-timeout", type=positive_float, default=3600, help="seconds to wait")
    _watched_args(p, "result")


def _incident_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("description")
    p.add_argument("--request-id", help="idempotent submission: the same id starts one saga")
    p.add_argument("--assignee", default="oncall")
    _model_args(p)
    p.add_argument("--approval-timeout", type=positive_float, default=3600, help="seconds to wait")
    p.add_argument("--approval-default", choices=["approve", "reject"], default="reject")
    add_priority_args(p)


def _watched_args(p: argparse.ArgumentParser, what: str) -> None:
    """What a run a person starts and watches takes: a budget, --json, streaming, priority."""
    _budget_args(p)
    p.add_argument("--json", action="store_true", help=f"print the {what} as JSON")
    _stream_arg(p)
    add_priority_args(p)


def _budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget-tokens", type=positive_int, help="stop model calls past this many tokens"
    )
    p.add_argument("--budget-cost", type=positive_float, help="stop model calls past this many USD")
    p.add_argument("--budget-seconds", type=positive_float, help="stop model calls after this long")


def _model_args(p: argparse.ArgumentParser, default: str | None = "local") -> None:
    help_text = "one model for every agent" if default is None else None
    p.add_argument("--provider", choices=PROVIDERS, default=default, help=help_text)
    p.add_argument("--model", help="model name; for the scripted provider, the script name")


def _agent_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="an agent of contracts/agents.toml (researcher, writer, ...)")
    p.add_argument("task")
    p.add_argument("--request-id", help="idempotent submission: the same id returns the same run")
    p.add_argument("--corpus", default="demo", help="document namespace its tools may search")
    p.add_argument("--clearance", choices=list(get_args(SecurityLevel)), default="public")
    _model_args(p, default=None)
    p.add_argument("--max-turns", type=positive_int, help="tool turns (default: agents.toml)")
    _watched_args(p, "result")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workflow_type", type=run_flow.workflow_type, help="e.g. BriefFlow")
    p.add_argument("--input", help="the flow's input, as JSON")
    p.add_argument("--id", type=workflow_id, help="workflow id (default: <type>-<random>)")
    p.add_argument("--wait", action="store_true", help="wait for the result and print it")
    add_priority_args(p)


# A flow's own command and its arguments: what `schedule create` can start.
FLOW_ARGS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {
    "research": (_research_args, "a research flow"),
    "ask": (_ask_args, "a request at the front door, routed to its flow"),
    "agent": (_agent_args, "one agent of agents.toml on a task"),
    "incident": (_incident_args, "an incident triaged into a ticket saga"),
    "run": (_run_args, "a flow of your own (worker.py --flow), by its workflow type name"),
}


def _stream_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the answer as the model writes it (default: when stderr is a terminal;"
        " each batch of text is a signal in the run's history)",
    )


def _connection_args(p: argparse.ArgumentParser, suppress: bool) -> None:
    """--address and --temporal-namespace, before or after the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    p.add_argument("--address", default=default, help="Temporal frontend (TEMPORAL_ADDRESS)")
    p.add_argument(
        "--temporal-namespace", default=default, help="Temporal namespace (TEMPORAL_NAMESPACE)"
    )


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line naming the cause (and exit 2), not a usage screen."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="client.py", description="Start, watch and inspect research runs.")
    _connection_args(parser, suppress=False)
    common = _Parser(add_help=False)
    _connection_args(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = functools.partial(sub.add_parser, parents=[common])

    _flow_commands(add)
    _operator_commands(add)
    _data_commands(add)
    return parser


def _flow_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Start, follow and steer runs: research, the team, agents, sagas."""
    started: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None], Run], ...] = (
        ("research", "run a research flow, show progress, print the report", _research_args,
         start.cmd_research),
        ("start", "start a research flow and return at once", _research_args, start.cmd_start),
        ("incident", "triage an incident into a ticket saga (awaits approval)", _incident_args,
         incident.cmd_incident),
        ("ask", "the front door: route a request to its flow, print the result", _ask_args,
         ask.cmd_ask),
        ("agent", "run one agent of agents.toml on a task, show progress, print its output",
         _agent_args, agent.cmd_agent),
    )  # fmt: skip
    for name, text, arguments, run in started:
        p = add(name, help=text)
        arguments(p)
        p.set_defaults(run=run)
    for name, fn, text in (
        ("status", commands.cmd_status, "current node, iteration, evidence and usage"),
        ("result", commands.cmd_result, "wait for a run and print its report"),
        ("cancel", commands.cmd_cancel, "cancel a running flow"),
    ):
        p = add(name, help=text)
        p.add_argument("workflow_id")
        if name == "result":
            p.add_argument("--json", action="store_true")
        p.set_defaults(run=fn)
    p = add("message", help="send a message to a running agent (its on_message policy decides)")
    p.add_argument("workflow_id")
    p.add_argument("text")
    p.add_argument("--id", help="the message's id: a resend with the same id is applied once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=message.cmd_message)
    p = add("watch", help="follow a run's steps and answer live (running or finished)")
    p.add_argument("workflow_id")
    p.add_argument("--no-tokens", action="store_true", help="steps only, not the answer's text")
    p.set_defaults(run=commands.cmd_watch)
    p = add("feedback", help="send notes to a team report waiting for approval")
    p.add_argument("workflow_id")
    p.add_argument("text")
    p.add_argument("--by", default=os.environ.get("USER", "cli"))
    p.set_defaults(run=ask.cmd_feedback)


def _operator_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """What an operator decides and watches across runs."""
    for name in ("approve", "reject"):
        p = add(name, help=f"{name} a saga or team report, or a tool call (--call), awaiting it")
        p.add_argument("workflow_id")
        p.add_argument("--call", type=positive_int, help="the tool call's number in the run")
        p.add_argument("--digest", help="the call's digest, as `approvals` shows it")
        p.add_argument("--by", default=os.environ.get("USER", "cli"))
        p.add_argument("--reason", default="")
        p.set_defaults(run=approvals.cmd_decide_any)
    p = add("approvals", help="every run waiting for a person: tool calls with their arguments")
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=approvals.cmd_approvals)
    p = add("reconcile", help="side effects whose outcome was lost: list, or resolve one")
    p.add_argument("workflow_id", nargs="?", type=workflow_id, help="the run (all runs if none)")
    p.add_argument(
        "--call", nargs="+", metavar=("N", "done|retry|undo"),
        action=reconcile.CallAnswer,
        help="the call's number, and what happened: done, retry (send again) or undo",
    )  # fmt: skip
    p.add_argument("--by", default=os.environ.get("USER", "cli"))
    p.add_argument("--reason", default="")
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=reconcile.cmd_reconcile)
    p = add("breakers", help="circuit breakers of the models: state and history")
    p.add_argument(
        "--scope",
        default=os.environ.get("KEEL_BREAKER_SCOPE") or KeelSettings().task_queue,
        help="breaker scope (default: the task queue)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=commands.cmd_breakers)
    _budgets_parser(add("budgets", help="each tenant's budget today: spent and left"))
    p = add("list", help="recent runs of every flow: research, team, agent, saga, router, ...")
    p.add_argument(
        "--type",
        action="append",
        type=run_flow.workflow_type,
        help=f"only these, children included (repeatable): {', '.join(TYPE_NAMES)}, or a"
        " workflow type name of your own",
    )
    p.add_argument("--all", action="store_true", help="also the agents a team runs inside it")
    p.add_argument("--under", type=workflow_id, help="every run in this run's tree")
    p.add_argument("--limit", type=positive_int, default=20)
    p.add_argument("--status", choices=["queued", "running", "delivered", "failed", "cancelled"])
    p.add_argument("--schedule", type=workflow_id, help="only the runs this schedule started")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=runs_list.cmd_list)
    _schedule_parser(add("schedule", help="start a flow on a cron or an interval (Temporal)"))


def _data_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Corpora, flows of one's own, forks, and the offline views of the contracts."""
    p = add("ingest", help="ingest a folder of .md/.txt files (read by the worker)")
    p.add_argument("path")
    p.add_argument("--corpus", default="demo", help="document namespace")
    p.add_argument(
        "--path-on-worker",
        action="store_true",
        help="PATH is a folder on the worker's machine (e.g. in its container): send it as is",
    )
    p.set_defaults(run=commands.cmd_ingest)
    p = add("run", help="start any flow the worker runs by its type name, your own included")
    _run_args(p)
    p.set_defaults(run=run_flow.cmd_run)
    p = add("fork", help="run a flow again from one of its model calls, side by side")
    p.add_argument("workflow_id")
    p.add_argument("--at", required=True, help="the call to run again from: write, write#2, review")
    p.set_defaults(run=fork.cmd_fork)
    p = add("contracts", help="validate the contract files in contracts/")
    p.add_argument("action", choices=["check"])
    p.add_argument(
        "--dir", type=Path, help="contracts folder (default: KEEL_CONTRACTS_DIR, else contracts/)"
    )
    p.set_defaults(run=None)
    p = add("tools", help="every tool agents may call: source, schema and policy (offline)")
    p.add_argument(
        "--dir", type=Path, help="contracts folder (default: KEEL_CONTRACTS_DIR, else contracts/)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=None)
    p = add("flows", help="print a flow's transition table")
    p.add_argument("name", nargs="?", default="research", choices=sorted(FLOWS))
    p.add_argument("--mermaid", action="store_true", help="as a mermaid flowchart")
    p.set_defaults(run=None)


def _schedule_parser(p: argparse.ArgumentParser) -> None:
    """`schedule create ID --cron ... <flow> <the flow's own arguments>` and the rest."""
    common = _Parser(add_help=False)
    _connection_args(common, suppress=True)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = functools.partial(actions.add_parser, parents=[common])
    create = add("create", help="a schedule that starts a flow with its arguments")
    create.add_argument("schedule_id", type=schedule_id)
    create.add_argument(
        "--cron",
        action="append",
        default=[],
        type=cron_expression,
        help="five fields (minute hour day-of-month month day-of-week) or @daily; repeatable",
    )
    create.add_argument(
        "--every", action="append", default=[], type=duration, help="interval: 15m, 1h; repeatable"
    )
    create.add_argument("--time-zone", type=time_zone, help="IANA zone of the cron times (UTC)")
    create.add_argument(
        "--overlap",
        choices=[o.value for o in Overlap],
        default=Overlap.SKIP.value,
        help="when the last run still runs: skip this one, buffer one, or cancel the last",
    )
    create.add_argument(
        "--catchup-window",
        type=catchup_window,
        default=DEFAULT_CATCHUP,
        help="after an outage, start missed times this far back, no further (default 1h)",
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--note", help="why it exists, shown with it")
    flows = create.add_subparsers(dest="flow", required=True, metavar="FLOW")
    for name, (add_args, text) in FLOW_ARGS.items():
        flow = flows.add_parser(name, help=text, parents=[common])
        add_args(flow)
    create.set_defaults(run=schedules.cmd_create)
    p = add("list", help="every schedule: its flow, state, next time and last run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=schedules.cmd_list)
    for name, fn, text in (
        ("describe", schedules.cmd_describe, "a schedule's spec, policies and recent runs"),
        ("pause", schedules.cmd_pause, "stop starting runs until unpaused"),
        ("unpause", schedules.cmd_pause, "start runs again at the next time"),
        ("trigger", schedules.cmd_trigger, "start its flow now and name the run"),
        ("delete", schedules.cmd_delete, "delete it (the runs it started are kept)"),
    ):
        p = add(name, help=text)
        p.add_argument("schedule_id", type=schedule_id)
        if name in ("pause", "unpause"):
            p.add_argument("--note", help="why, kept on the schedule")
        if name == "trigger":
            p.add_argument(
                "--overlap", choices=[o.value for o in Overlap], help="instead of the schedule's"
            )
        p.set_defaults(run=fn)


def _budgets_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--day", type=budgets.day_argument, help="a UTC day, YYYY-MM-DD (today)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=budgets.cmd_budgets)
