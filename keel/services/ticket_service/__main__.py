"""Run the ticket service: `python -m keel.services.ticket_service [--port 8400] [--db PATH]`.

Every call but ``GET /health`` needs ``Authorization: Bearer <token>``; the token
comes from ``KEEL_TICKETS_TOKEN``, ``KEEL_TICKETS_TOKEN_FILE`` or
``.data/tickets.token`` (keel/infra/tokens.py), never a flag, and without one the
service does not start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from keel.infra.tokens import DEFAULT_TOKEN_FILE, TokenError, load_tickets_token
from keel.services.ticket_service.app import create_app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.services.ticket_service", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--db", type=Path, default=Path(".data/tickets.db"))
    parser.add_argument("--faults", action="store_true", help="enable POST /_faults (tests)")
    args = parser.parse_args(argv)
    try:
        token = load_tickets_token()
    except TokenError as error:
        print(f"ticket service: {error}", file=sys.stderr)
        return 2
    if token is None:
        print(
            "ticket service: no bearer token: set KEEL_TICKETS_TOKEN (16+ chars) or"
            f" KEEL_TICKETS_TOKEN_FILE, or run `python devserver.py start --with-tickets`,"
            f" which writes {DEFAULT_TOKEN_FILE}",
            file=sys.stderr,
        )
        return 2
    app = create_app(args.db, token, faults_enabled=args.faults)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
