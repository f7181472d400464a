"""Start, watch and inspect research runs.

python client.py ask "Write a report on circuit breakers"
python client.py research "How do idempotency keys make retries safe?"
python client.py ingest corpus/demo --corpus demo
python client.py status research-<id>
python client.py flows research --mermaid
python client.py flows team
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pydantic
from temporalio.service import RPCError

from activities.contracts.loader import CONTRACTS_DIR, ContractError, check_all
from keel.cli import budgets, context, tools
from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, Context
from keel.cli.parser import build_parser
from keel.graphs.flows import FLOWS
from keel.infra.keys import KeyRingError
from keel.infra.settings import KeelSettings, TemporalSettings, WorkerSettings
from keel.infra.temporal import connect
from keel.infra.tracing import command_span, configure_tracing, flush_tracing
from keel.payloads.errors import describe_validation_error

Command = Callable[[Context, argparse.Namespace], Awaitable[int]]


def print_flow(name: str, mermaid: bool) -> int:
    flow = FLOWS[name]
    if mermaid:
        print(flow.to_mermaid(), end="")
        return EXIT_OK
    for edge in flow.edges:
        note = f"  ({edge.note})" if edge.note else ""
        print(f"{edge.source:<15} --{edge.on.value}--> {edge.target}{note}")
    return EXIT_OK


def check_contracts(directory: Path | None) -> int:
    """Offline: the same checks a worker makes at start (the same loader, the same
    registries of tools, output models and prompts), without a server."""
    directory = directory or WorkerSettings().contracts_dir or CONTRACTS_DIR
    try:
        lines = check_all(directory)
    except ContractError as error:
        context.err(f"error: invalid contracts: {error}")
        return EXIT_USAGE
    for line in lines:
        print(line)
    print(f"contracts in {directory} are valid")
    return EXIT_OK


async def run_command(command: Command, args: argparse.Namespace) -> int:
    overrides = {"address": args.address, "namespace": args.temporal_namespace}
    temporal = TemporalSettings(**{k: v for k, v in overrides.items() if v is not None})
    keel = KeelSettings()
    try:
        client = await connect(temporal)
    except KeyRingError as error:
        context.err(f"error: {error}")
        return EXIT_USAGE
    except RuntimeError:
        context.err(
            f"error: cannot reach the Temporal server at {temporal.address}."
            " Start the embedded one with `python devserver.py start --with-worker`"
            " (or `make demo`), or point TEMPORAL_ADDRESS at your server."
        )
        return EXIT_UNREACHABLE
    try:
        name = " ".join([args.command, *([args.action] if args.command == "schedule" else [])])
        with command_span(f"client.py {name}"):
            return await command(Context(client, temporal, keel), args)
    except RPCError as error:
        if context.is_not_found(error):
            context.err(f"error: not found: {error.message}")
        else:
            context.err(f"error: the server refused: {error.message}")
        return EXIT_FAILED
    finally:
        # Drop the client while the event loop still runs (see main()).
        del client
        gc.collect()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "contracts":
        return check_contracts(args.dir)
    if args.command == "tools":
        return tools.cmd_tools(
            args.dir or WorkerSettings().contracts_dir or CONTRACTS_DIR, args.json
        )
    if args.run is None:
        return print_flow(args.name, args.mermaid)
    configure_tracing("keel-client")
    if args.command == "ingest" and not args.path_on_worker:
        args.path = Path(args.path).resolve()
        if not args.path.is_dir():
            context.err(f"error: {args.path} is not a folder")
            return EXIT_USAGE
    try:
        return asyncio.run(run_command(args.run, args))
    except pydantic.ValidationError as error:
        context.err(f"error: invalid input: {describe_validation_error(error)}")
        return EXIT_USAGE
    except (context.UsageError, budgets.UnknownTenant) as error:
        context.err(f"error: {error}")
        return EXIT_USAGE
    except budgets.BudgetRefused as error:
        context.err(f"refused: {error}")
        return context.EXIT_REFUSED
    except KeyboardInterrupt:
        context.err("interrupted; the run goes on in Temporal (see `client.py status`)")
        return EXIT_FAILED


if __name__ == "__main__":
    code = main()
    flush_tracing()
    # The SDK's native client threads can crash interpreter teardown after the work
    # is done (SIGSEGV/SIGABRT in a share of runs); skip teardown so the exit code
    # is the one the command returned.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
