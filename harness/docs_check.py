"""`make docs-check`: every command the docs show is run, or at least parsed.

It reads the fenced blocks of README.md, docs/*.md and harness/bench/README.md. Each ```bash
block, and each ```text block that shows a command's output, carries a marker on the
line before it, reviewed with the block:

    <!-- docs-check: run -->
        Each command runs, in order, against a dev server, a worker and a ticket
        service this check starts (its own ports and data folder); each must exit 0.
    <!-- docs-check: output -->
        A ```text block whose first line is `$ command`: the command runs as above and
        its output (stdout and stderr, as a terminal shows them) must equal the rest of
        the block once run-specific values (ids, run ids, durations, ports) are masked.
    <!-- docs-check: output-of: <command> -->
        The block (a mermaid diagram, say) is the command's whole output, compared
        the same way.
    <!-- docs-check: recorded: <why it cannot run here> -->
        A ```text block that starts with `$ command`, recorded from a real run that
        cannot be repeated here (the local model's prose varies by machine; the whole
        suite): the command is parsed only, as below, and the block is not compared.
    <!-- docs-check: parse-only: <why it cannot run here> -->
        Each command is parsed only: a make target exists (`make -n`); client.py's
        parser accepts the arguments; for worker.py, devserver.py, `python -m <module>`
        and `temporal`, the subcommand and every --flag appear in its --help; a compose
        command names a subcommand and services the compose file defines (and
        `docker-compose config` accepts the file where it is installed).

A bash block without a marker, or a command the check does not know, fails it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.docs_parse import CheckError, localize, parse_only

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
PAGES.append("harness/bench/README.md")

MARKER = re.compile(
    r"<!-- docs-check: (run|output|output-of: [^>]+?|parse-only: [^>]+?|recorded: [^>]+?) -->"
)
FENCE = re.compile(r"^```(\w*)\s*$")
COMMAND_SECONDS = 300

# Values that differ between runs, masked before an output block is compared.
MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<run-id>"),
    (re.compile(r"\b(research|report|incident|ask|team|agent)-[0-9a-f]{12}\b"), r"\1-<id>"),
    (re.compile(r"(localhost|127\.0\.0\.1):\d+"), r"\1:<port>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<t> s"),
    # Contract versions and content hashes change with every edit of a contract or prompt.
    (re.compile(r"\b(\d+|-)@[0-9a-f]{12}\b"), "<version>@<hash>"),
    (re.compile(r"@[0-9a-f]{16}\b"), "@<hash>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00"), "<timestamp>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<time>"),
]
# Progress lines are polled while a run goes on: how many a run prints depends on timing.
POLLED = re.compile(r"^\[(queued|running|awaiting_approval)\] ")
EXIT = re.compile(r"\s+# exit (\d+)$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    kind: str  # "run", "output", "output-of" or "parse-only"
    lines: list[str]
    command: str = ""  # output-of: the command whose whole output the block is

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> Iterator[Block]:
    """The marked blocks of a page; an unmarked bash block is an error."""
    text = (ROOT / page).read_text().splitlines()
    i = 0
    while i < len(text):
        fence = FENCE.match(text[i])
        if not fence or not fence.group(1):
            i += 1
            continue
        language, start = fence.group(1), i
        end = next(j for j in range(i + 1, len(text)) if text[j].startswith("```"))
        marker = MARKER.search(text[start - 1]) if start > 0 else None
        body = text[start + 1 : end]
        i = end + 1
        if marker is None:
            if language == "bash":
                raise CheckError(f"{page}:{start + 1}: a bash block without a docs-check marker")
            continue
        kind, _, rest = marker.group(1).partition(": ")
        if kind == "output-of":
            yield Block(page, start + 1, kind, [f"$ {rest.strip()}", *body], rest.strip())
            continue
        if (kind in ("output", "recorded")) != (language == "text"):
            raise CheckError(f"{page}:{start + 1}: {kind} marks a {language} block")
        yield Block(page, start + 1, kind, body)


def commands(block: Block) -> list[str]:
    """A bash block's commands: comments dropped, continuation lines joined."""
    joined: list[str] = []
    pending = ""
    for raw in block.lines:
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        words = shlex.split(line, comments=True)
        if words:
            joined.append(shlex.join(words))
    return joined


# --- run and output ------------------------------------------------------------------


@dataclass
class Sandbox:
    """A dev server, worker and ticket service of the check's own."""

    data: Path
    env: dict[str, str]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            shlex.join(localize(command)),
            shell=True,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_SECONDS,
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory(prefix="keel-docs-") as folder:
        data = Path(folder)
        port, ui, codec, tickets = (_free_port() for _ in range(4))
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "KEEL_DOCUMENTS_DB": str(data / "documents.db"),
            "KEEL_TICKETS_URL": f"http://127.0.0.1:{tickets}",
            "KEEL_METRICS_PORT": "0",
            "KEEL_UI_URL": f"http://localhost:{ui}",
        }
        # devserver.py writes a key into the data folder when none is configured.
        for name in (
            "TEMPORAL_NAMESPACE",
            "TEMPORAL_API_KEY",
            "KEEL_CODEC_KEYS",
            "KEEL_CODEC_KEY_FILE",
        ):
            env.pop(name, None)
        devserver = [sys.executable, "devserver.py", "--data-dir", str(data)]
        ports = ["--port", str(port), "--ui-port", str(ui), "--codec-port", str(codec)]
        start = [*devserver, "start", *ports, "--with-worker", "--with-tickets"]
        start += ["--tickets-port", str(tickets)]
        started = subprocess.run(start, cwd=ROOT, env=env, capture_output=True, text=True)
        try:
            if started.returncode != 0:
                raise CheckError(
                    f"the check's server did not start: {started.stdout}{started.stderr}"
                )
            box = Sandbox(data, {**env, "KEEL_CODEC_KEY_FILE": str(data / "codec.keys")})
            for corpus in ("demo", "postmortems"):
                ingested = box.run(f"python client.py ingest corpus/{corpus} --corpus {corpus}")
                if ingested.returncode != 0:
                    raise CheckError(f"ingest {corpus}: {ingested.stdout[-500:]}")
            yield box
        finally:
            subprocess.run([*devserver, "stop"], cwd=ROOT, env=env, capture_output=True)


def masked(text: str) -> list[str]:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return [line.rstrip() for line in text.strip().splitlines() if not POLLED.match(line)]


def check_output(box: Sandbox, block: Block) -> None:
    if not block.lines or not block.lines[0].startswith("$ "):
        raise CheckError(f"{block.where()}: an output block starts with `$ command`")
    command = block.lines[0][2:]
    exit_ = EXIT.search(command)
    done = box.run(EXIT.sub("", command))
    if done.returncode != (int(exit_.group(1)) if exit_ else 0):
        raise CheckError(f"{block.where()}: `{command}` exited {done.returncode}")
    expected, got = masked("\n".join(block.lines[1:])), masked(done.stdout)
    if expected != got:
        diff = "\n".join(
            f"  doc: {e!r}\n  run: {g!r}"
            for e, g in itertools.zip_longest(expected, got, fillvalue="")
            if e != g
        )
        raise CheckError(f"{block.where()}: the output differs from a run:\n{diff[:3000]}")


GENERATED = re.compile(r"^<!-- docs-check: generated-by: (?P<command>.+?) -->$")
GENERATED_END = "<!-- docs-check: end generated -->"


def check_generated(page: str) -> int:
    """A section a command generates (the settings table) equals the command's output now."""
    text = (ROOT / page).read_text().splitlines()
    checked = 0
    for i, line in enumerate(text):
        marker = GENERATED.match(line)
        if marker is None:
            continue
        end = text.index(GENERATED_END, i)
        argv = localize(marker["command"])
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or done.stdout.strip().splitlines() != text[i + 1 : end]:
            raise CheckError(
                f"{page}:{i + 1}: the section differs from `{marker['command']}`;"
                f" paste its output between the markers{done.stderr[-500:]}"
            )
        checked += 1
    return checked


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parse-only", action="store_true", help="run nothing; parse all")
    args = parser.parse_args(argv)
    found = [b for page in PAGES for b in blocks(page)]
    counts = {"run": 0, "output": 0, "parse-only": 0}
    failures: list[str] = []
    runnable = [b for b in found if b.kind not in ("parse-only", "recorded")]
    for page in PAGES:
        try:
            counts["output"] += check_generated(page)
        except CheckError as error:
            failures.append(str(error))
    for block in found:
        if block.kind in ("parse-only", "recorded") or args.parse_only:
            output = block.kind in ("output", "output-of", "recorded")
            shown = [EXIT.sub("", block.lines[0][2:])] if output else None
            for command in shown or commands(block):
                try:
                    parse_only(command)
                    counts["parse-only"] += 1
                except CheckError as error:
                    failures.append(f"{block.where()}: {error}")
    if runnable and not args.parse_only:
        with sandbox() as box:
            for block in runnable:
                try:
                    if block.kind in ("output", "output-of"):
                        check_output(box, block)
                        counts["output"] += 1
                        continue
                    for command in commands(block):
                        done = box.run(command)
                        if done.returncode != 0:
                            raise CheckError(
                                f"{block.where()}: `{command}` exited {done.returncode}:\n"
                                f"{done.stdout[-1500:]}"
                            )
                        counts["run"] += 1
                except CheckError as error:
                    failures.append(str(error))
    for failure in failures:
        print(f"docs-check: {failure}", file=sys.stderr)
    print(
        f"docs-check: {len(PAGES)} pages; {counts['run']} commands run, {counts['output']}"
        f" outputs compared, {counts['parse-only']} commands parsed only;"
        f" {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
