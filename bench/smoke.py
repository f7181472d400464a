"""Temporary smoke run."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bench import where_time_goes
from bench.common import Context, demo_store, dev_server, prepare_scripts
from infra.logging import configure_logging


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with dev_server(work, sys.argv[1:]) as env:
            ctx = Context(env, work, prepare_scripts(work), demo_store(work))
            section = await where_time_goes.measure(ctx)
            print(section)


configure_logging("console", "WARNING")
asyncio.run(main())
