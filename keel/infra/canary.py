"""Scan what an outsider could read for strings that must never be there.

    python -m keel.infra.canary --strings-file canaries.txt          # .data/: db, WAL, logs
    python -m keel.infra.canary STRING ... --workflow-id research-42  # and that run's history
    python -m keel.infra.canary --strings-file canaries.txt --all-workflows --file cli-output.txt

Plant canaries (a fake API key, a phrase in a restricted document), run the flows,
then scan: the server's SQLite database and its WAL and shared-memory files, every
``*.log`` in the data folder, any ``--file`` (a captured CLI output), and, through
the ``temporal`` CLI without a codec, ``temporal workflow show --output json`` and
``temporal workflow describe --output json`` of the given runs (or of every run with
``--all-workflows``). Base64 inside that JSON (payload data) is decoded and searched
too, and each string is also looked for as it would be escaped inside JSON.

Prints one line per place that holds a string (the string by number, never in
full) and exits 1 if any was found, 0 if none, 2 on a usage error. Strings given
on the command line show in the process list: for a real key, use --strings-file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.infra.binaries import temporal_cli
from keel.infra.settings import DATA_DIR

DATABASE_FILES = ("temporal.db", "temporal.db-wal", "temporal.db-shm")
CLI_SECONDS = 60
MIN_STRING_CHARS = 6  # shorter strings match by chance


@dataclass(frozen=True)
class Finding:
    place: str
    string: int  # 1-based, in the order given
    count: int


@dataclass
class Scan:
    searched: list[str]
    findings: list[Finding]


def forms(text: str) -> list[bytes]:
    """The string as stored raw (UTF-8) and as escaped inside JSON, when that differs."""
    raw = text.encode()
    escaped = json.dumps(text)[1:-1].encode()
    return [raw] if escaped == raw else [raw, escaped]


def count_in(blob: bytes, strings: Sequence[str]) -> dict[int, int]:
    found: dict[int, int] = {}
    for number, text in enumerate(strings, 1):
        hits = sum(blob.count(form) for form in forms(text))
        if hits:
            found[number] = hits
    return found


def _decoded_strings(node: Any) -> Iterator[bytes]:
    """Every string in a JSON document, and the bytes of those that are base64."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _decoded_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _decoded_strings(value)
    elif isinstance(node, str):
        yield node.encode()
        if len(node) >= 8 and len(node) % 4 == 0:
            yield _base64(node)


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def json_blob(text: str) -> bytes:
    """A CLI's JSON output with its base64 payloads decoded, ready to search."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text.encode()
    return b"\n".join(_decoded_strings(document))


def _temporal(address: str, namespace: str, *args: str) -> str:
    """A `temporal` CLI command without any codec: what the server itself hands out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_CODEC")}
    done = subprocess.run(
        [str(temporal_cli()), *args, "--address", address, "--namespace", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise RuntimeError(f"temporal {args[0]} {args[1]} failed: {first}")
    return done.stdout


def workflow_ids(address: str, namespace: str, limit: int) -> list[str]:
    listed = _temporal(
        address, namespace, "workflow", "list", "--output", "json", "--limit", str(limit)
    )
    rows = json.loads(listed or "[]")
    return list(dict.fromkeys(row["execution"]["workflowId"] for row in rows))


def scan(
    strings: Sequence[str],
    *,
    data_dir: Path | None = None,
    files: Sequence[Path] = (),
    workflows: Sequence[str] = (),
    address: str = "localhost:7233",
    namespace: str = "default",
) -> Scan:
    """Where each string occurs: files as bytes, histories as the server returns them."""
    findings: list[Finding] = []
    searched: list[str] = []

    def record(place: str, blob: bytes) -> None:
        searched.append(place)
        for number, count in count_in(blob, strings).items():
            findings.append(Finding(place, number, count))

    paths = list(files)
    if data_dir is not None:
        paths += [data_dir / name for name in DATABASE_FILES]
        paths += sorted(data_dir.glob("*.log"))
    for path in paths:
        if path.is_file():
            record(str(path), path.read_bytes())
    for workflow_id in workflows:
        for command in ("show", "describe"):
            shown = _temporal(
                address,
                namespace,
                "workflow",
                command,
                "--workflow-id",
                workflow_id,
                "--output",
                "json",
            )
            record(f"temporal workflow {command} {workflow_id}", json_blob(shown))
    return Scan(searched, findings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.infra.canary", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("strings", nargs="*", help="strings that must not be found")
    parser.add_argument("--strings-file", type=Path, help="one string per line")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the server's folder")
    parser.add_argument("--file", type=Path, action="append", default=[], help="also this file")
    parser.add_argument("--workflow-id", action="append", default=[], help="also this history")
    parser.add_argument("--all-workflows", action="store_true", help="every run's history")
    parser.add_argument("--limit", type=int, default=1000, help="runs read with --all-workflows")
    parser.add_argument("--address", default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
    parser.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    args = parser.parse_args(argv)
    strings = list(args.strings)
    if args.strings_file is not None:
        try:
            lines = args.strings_file.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            print(f"canary: cannot read {args.strings_file}: {error.strerror}", file=sys.stderr)
            return 2
        strings += [line.strip() for line in lines if line.strip()]
    short = [n for n, s in enumerate(strings, 1) if len(s) < MIN_STRING_CHARS]
    if not strings or short:
        print(
            f"canary: give strings of {MIN_STRING_CHARS}+ characters to look for"
            + (f" (string {short[0]} is too short)" if short else ""),
            file=sys.stderr,
        )
        return 2
    try:
        workflows = list(args.workflow_id)
        if args.all_workflows:
            workflows += workflow_ids(args.address, args.namespace, args.limit)
        result = scan(
            strings,
            data_dir=args.data_dir,
            files=args.file,
            workflows=list(dict.fromkeys(workflows)),
            address=args.address,
            namespace=args.namespace,
        )
    except (RuntimeError, subprocess.TimeoutExpired, FileNotFoundError) as error:
        print(f"canary: {error}", file=sys.stderr)
        return 2
    for finding in result.findings:
        print(f"FOUND string {finding.string} x{finding.count} in {finding.place}")
    print(
        f"{len(strings)} string(s), {len(result.findings)} finding(s) in"
        f" {len(result.searched)} place(s) searched",
        file=sys.stderr,
    )
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
