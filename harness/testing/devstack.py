"""One stack as users run it (`devserver.py start --with-worker`), and the commands run on it.

The encrypted-history and canary suites start it on a fresh folder and read it from
outside: the database, the logs, `temporal workflow show` with and without a codec.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from harness.testing.ports import free_port
from harness.testing.stack import ROOT, SCRIPTED_DIR
from keel.infra.binaries import temporal_cli
from keel.infra.codec import encrypting_converter
from keel.infra.keys import read_key_file

CANARY = "zephyr-quartz-canary-4417"
CANARY_DOC = f"""# Postmortem: Blueheron dedup outage follow-up

Internal, restricted. The Blueheron dedup outage follow-up found the phrase {CANARY}
in the intake queue, next to the duplicate tickets.
"""


@dataclass
class Stack:
    data: Path
    port: int
    ui_port: int
    codec_port: int
    env: dict[str, str]

    @classmethod
    def fresh(cls, data: Path, **extra_env: str) -> Stack:
        """A stack in `data` on free ports, with no codec key configured: it makes its own,
        as on a fresh checkout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_CODEC")}
        env |= {
            "KEEL_DOCUMENTS_DB": str(data / "documents.db"),
            "KEEL_SCRIPTED_DIR": str(SCRIPTED_DIR),
            "KEEL_METRICS_PORT": "0",
            "KEEL_LOG_FORMAT": "json",
            **extra_env,
        }
        return cls(data, free_port(), free_port(), free_port(), env)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def key_file(self) -> Path:
        return self.data / "codec.keys"

    async def client(self) -> Client:
        converter = encrypting_converter(read_key_file(self.key_file))
        return await Client.connect(self.address, data_converter=converter)

    def devserver_args(self) -> list[str]:
        return [
            "--data-dir", str(self.data), "--port", str(self.port),
            "--ui-port", str(self.ui_port), "--codec-port", str(self.codec_port),
        ]  # fmt: skip


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def run(*command: str, env: dict[str, str], seconds: float = 120) -> Ran:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), seconds)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def devserver(stack: Stack, *args: str) -> Ran:
    return await run(sys.executable, "devserver.py", *args, *stack.devserver_args(), env=stack.env)


def payload_texts(node: Any) -> Iterator[str]:
    """Every payload's data in `temporal workflow show --output json`, decoded from base64."""
    if isinstance(node, dict):
        if set(node) >= {"metadata", "data"} and isinstance(node["data"], str):
            yield base64.b64decode(node["data"]).decode("utf-8", "replace")
        for value in node.values():
            yield from payload_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from payload_texts(value)


async def temporal_workflow(stack: Stack, command: str, workflow_id: str, *codec: str) -> Ran:
    """`temporal workflow <command>` on one workflow of the stack, as JSON."""
    return await run(
        str(temporal_cli()), "workflow", command, "--address", stack.address,
        "--workflow-id", workflow_id, "--output", "json", *codec,
        env=stack.env,
    )  # fmt: skip


async def show(stack: Stack, workflow_id: str, *codec: str) -> tuple[Ran, str]:
    """`temporal workflow show --output json`; also returns every payload's decoded text."""
    shown = await temporal_workflow(stack, "show", workflow_id, *codec)
    texts = ""
    if shown.code == 0:
        texts = "\n".join(payload_texts(json.loads(shown.out)))
    return shown, texts
