"""Run the project's scripts as subprocesses without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

from tests.conftest import ROOT


@dataclass(frozen=True)
class Completed:
    code: int
    stdout: str
    stderr: str


async def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, limit_seconds: float = 120
) -> Completed:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / script),
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), limit_seconds)
    assert process.returncode is not None
    return Completed(process.returncode, out.decode(), err.decode())
