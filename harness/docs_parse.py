"""The docs check's parse-only rules: a command that cannot run here is at least parsed.

A make target must exist (`make -n`); client.py's parser must accept the arguments;
for worker.py, devserver.py, `python -m <module>` and `temporal`, the subcommand and
every --flag must appear in its --help; a compose command must name a subcommand and
services the compose file defines (and `docker-compose config` accept the file).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class CheckError(Exception):
    """A documented command that does not hold."""


def localize(command: str) -> list[str]:
    """The command's words, with the project's virtualenv taken to be this Python's."""
    words = shlex.split(command)
    if words and words[0] in ("python", "python3", ".venv/bin/python"):
        words[0] = sys.executable
    bindir = Path(sys.executable).parent
    return [str(bindir / w.removeprefix(".venv/bin/")) if w.startswith(".venv/bin/") else w
            for w in words]  # fmt: skip


def parse_only(command: str) -> None:
    words = localize(command)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]  # an environment assignment before the command
    if not words:
        return
    program = Path(words[0]).name
    if program == "make":
        _make(words[1:])
    elif program == "export":
        if not all(re.fullmatch(r"[A-Z_]+=.+", w) for w in words[1:]):
            raise CheckError(f"export of something else than NAME=value: {command}")
        for inner in re.findall(r"\$\((.+)\)", " ".join(words[1:])):
            parse_only(inner)  # the command whose output is exported
    elif program in ("docker", "docker-compose"):
        _compose(words[2:] if program == "docker" and words[1:2] == ["compose"] else words[1:])
    elif program == "temporal":
        _flags_in_help([str(_temporal()), *words[1:]], subcommands=True)
    elif program.startswith("python"):
        _python(words[1:])
    else:
        raise CheckError(f"no rule to check {program!r}: {command}")


def _make(args: list[str]) -> None:
    targets = [a for a in args if "=" not in a]
    variables = [a for a in args if "=" in a]
    for target in targets:
        if not re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M):
            raise CheckError(f"make has no target {target!r}")
    done = subprocess.run(
        ["make", "-n", *targets, *variables], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise CheckError(f"make -n {' '.join(args)}: {done.stderr.strip()}")
    for variable in variables:
        name, _, value = variable.partition("=")
        if name in MAKE_ARGS:  # flags handed to a program: that program must take them
            _flags_in_help([sys.executable, "-m", MAKE_ARGS[name], *shlex.split(value)],
                           subcommands=False)  # fmt: skip


# Make variables whose value is a program's flags.
MAKE_ARGS = {"BENCH_ARGS": "harness.bench", "CHAOS_ARGS": "harness.chaos"}


def _python(args: list[str]) -> None:
    if args[:1] == ["client.py"]:
        sys.path.insert(0, str(ROOT))
        from keel.cli.parser import build_parser

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # --help prints, then exits 0
                build_parser().parse_args(args[1:])
        except SystemExit as exit_:
            if exit_.code:
                raise CheckError(f"client.py does not accept {shlex.join(args[1:])}") from None
        return
    if args[:1] == ["-c"]:
        compile(args[1], "<python -c>", "exec")
    elif args[:1] == ["-m"]:
        _flags_in_help([sys.executable, "-m", args[1], *args[2:]], subcommands=False)
    elif args and args[0].endswith(".py"):
        _flags_in_help([sys.executable, args[0], *args[1:]], subcommands=False)
    else:
        raise CheckError(f"no rule to check python {shlex.join(args)}")


def _flags_in_help(argv: list[str], *, subcommands: bool) -> None:
    """The program answers --help and names every flag (and the action word) used.

    With `subcommands` (temporal), the words before the first flag are the
    subcommand path, and that path must answer --help itself.
    """
    if subcommands:
        split = next((i for i, w in enumerate(argv) if w.startswith("-")), len(argv))
    else:
        split = 3 if argv[1] == "-m" else 2
    program, used = argv[:split], argv[split:]
    done = subprocess.run([*program, "--help"], cwd=ROOT, capture_output=True, text=True)
    help_text = done.stdout
    if done.returncode != 0 and "ModuleNotFoundError" in done.stderr and program[1] == "-m":
        # `python -m harness.bench` imports the bench extra (LangGraph, psutil), which make test
        # does not install: its flags are read from the parser's source instead.
        help_text = (ROOT / program[2].replace(".", "/") / "__main__.py").read_text()
    elif done.returncode != 0:
        raise CheckError(f"{shlex.join(program)} --help failed: {done.stderr.strip()[-300:]}")
    if subcommands:  # temporal lists its global and connection flags apart
        help_text += subprocess.run([program[0], "options"], capture_output=True, text=True).stdout
    for word in used:
        flag = word.split("=")[0]
        if flag.startswith("--") and flag != "--help" and flag not in help_text:
            raise CheckError(f"{shlex.join(program)} has no flag {flag}")
    action = used[0] if used and re.fullmatch(r"[a-z][a-z-]*", used[0]) else None
    if action and not re.search(rf"\b{action}\b", help_text):
        raise CheckError(f"{shlex.join(program)} --help does not name {action!r}")


def _temporal() -> Path:
    sys.path.insert(0, str(ROOT))
    from keel.infra.binaries import temporal_cli

    return temporal_cli()


COMPOSE_SUBCOMMANDS = {"up", "down", "ps", "logs", "config", "build", "run", "exec", "stop"}


def _compose(args: list[str]) -> None:
    if not args or args[0] not in COMPOSE_SUBCOMMANDS:
        raise CheckError(f"not a compose subcommand this check knows: {args[:1]}")
    services = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
    for i, word in enumerate(args):
        if word == "--scale":
            name = args[i + 1].split("=")[0]
            if name not in services:
                raise CheckError(f"--scale {name}: no such service in docker-compose.yml")
    if shutil.which("docker-compose"):
        done = subprocess.run(
            ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **COMPOSE_PLACEHOLDERS},
        )
        if done.returncode != 0:
            raise CheckError(f"docker-compose config: {done.stderr.strip()[-500:]}")


# Secrets the compose file requires from the environment, for `config` alone.
COMPOSE_PLACEHOLDERS = {
    "KEEL_CODEC_KEYS": "placeholder",
    "KEEL_CODEC_SERVER_TOKEN": "placeholder",
    "KEEL_TICKETS_TOKEN": "placeholder",
    "MINIO_ROOT_PASSWORD": "placeholder",
}
