"""make docs-check fails on the drift it exists to catch: each rule, given a wrong command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import docs_check
from harness.docs_check import Block, check_output, masked
from harness.docs_parse import CheckError, parse_only


def test_an_unmarked_bash_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "page.md").write_text("Text.\n\n```bash\nmake test\n```\n")
    monkeypatch.setattr(docs_check, "ROOT", tmp_path)
    with pytest.raises(CheckError, match="without a docs-check marker"):
        list(docs_check.blocks("page.md"))


def test_a_marked_block_is_read_with_its_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "page.md").write_text(
        "<!-- docs-check: parse-only: needs an engine -->\n```bash\n"
        "make demo   # a comment\n.venv/bin/python client.py list \\\n    --json\n```\n"
    )
    monkeypatch.setattr(docs_check, "ROOT", tmp_path)
    [block] = docs_check.blocks("page.md")
    assert block.kind == "parse-only"
    assert docs_check.commands(block) == ["make demo", ".venv/bin/python client.py list --json"]


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        ("make no-such-target", "no target"),
        ('make bench BENCH_ARGS="--no-such-flag"', "no flag --no-such-flag"),
        (".venv/bin/python client.py research --no-such-flag", "does not accept"),
        (".venv/bin/python client.py no-such-command", "does not accept"),
        (".venv/bin/python worker.py --no-such-flag", "no flag --no-such-flag"),
        (".venv/bin/python devserver.py restart", "does not name 'restart'"),
        (".venv/bin/python -m harness.chaos --no-such-flag", "no flag --no-such-flag"),
        (".venv/bin/temporal workflow show --no-such-flag", "no flag --no-such-flag"),
        ("docker compose up --scale no-such-service=2", "no such service"),
        ("docker compose frobnicate", "not a compose subcommand"),
        ("curl http://localhost:8233", "no rule"),
    ],
)
def test_a_wrong_command_fails_the_parse(command: str, complaint: str) -> None:
    with pytest.raises(CheckError, match=complaint):
        parse_only(command)


@pytest.mark.parametrize(
    "command",
    [
        "make test",
        'make chaos CHAOS_ARGS="--seeds 200"',
        '.venv/bin/python client.py research "Why?" --provider scripted --model x --json',
        ".venv/bin/python devserver.py start --with-worker --with-tickets",
        ".venv/bin/python -m keel.infra.keys rotate --key-file k",
        ".venv/bin/temporal workflow show --workflow-id w --codec-endpoint http://x",
        "docker-compose up --detach --scale worker-orchestration=3",
    ],
)
def test_a_documented_command_parses(command: str) -> None:
    parse_only(command)


class _Box:
    """A sandbox stand-in whose command prints a fixed output."""

    def __init__(self, output: str, code: int = 0) -> None:
        self.output, self.code = output, code

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, self.code, self.output)


RUN = (
    "workflow research-613f51405eb1 run 01a22f95-db23-72f4-977f-1e6f8dae152e\n"
    "[running] node=plan iteration=1\n"
    "Review: passed, score 4/5\n"
    "Model: scripted/x; 7 calls, 0.0 s in the model\n"
)


def test_an_output_block_equals_a_run_once_ids_and_times_are_masked() -> None:
    shown = [
        "$ client.py research x",
        "workflow research-0123456789ab run 00000000-0000-0000-0000-000000000000",
        "Review: passed, score 4/5",
        "Model: scripted/x; 7 calls, 12.5 s in the model",
    ]
    check_output(_Box(RUN), Block("README.md", 1, "output", shown))  # type: ignore[arg-type]


def test_an_output_block_that_drifted_from_a_run_fails() -> None:
    shown = ["$ client.py research x", "Review: passed, score 5/5"]
    with pytest.raises(CheckError, match="score 5/5"):
        check_output(_Box(RUN), Block("README.md", 1, "output", shown))  # type: ignore[arg-type]


def test_an_unexpected_exit_code_fails_the_output() -> None:
    shown = ["$ client.py ask x  # exit 4", "refused"]
    check_output(_Box("refused\n", 4), Block("README.md", 1, "output", shown))  # type: ignore[arg-type]
    with pytest.raises(CheckError, match="exited 0"):
        check_output(_Box("refused\n", 0), Block("README.md", 1, "output", shown))  # type: ignore[arg-type]


def test_masks_keep_what_a_reader_compares() -> None:
    assert masked("tokens=1794+80 at 127.0.0.1:7233, 3.2 s, plan@85f99b30d91ca758") == [
        "tokens=1794+80 at 127.0.0.1:<port>, <t> s, plan@<hash>"
    ]
