"""Run the ticket service: `python -m ticket_service [--port 8400] [--db PATH] [--faults]`."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from ticket_service.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ticket_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--db", type=Path, default=Path(".data/tickets.db"))
    parser.add_argument("--faults", action="store_true", help="enable POST /_faults (tests)")
    args = parser.parse_args()
    app = create_app(args.db, faults_enabled=args.faults)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
