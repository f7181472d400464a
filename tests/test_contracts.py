"""Contract files: validated at worker start and by `client.py contracts check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from activities.contracts.loader import CONTRACTS_DIR, FILES, ContractError, load_contracts
from harness.testing.processes import run_script


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_contracts_load_with_a_version_per_file() -> None:
    snapshot = load_contracts()
    assert {"researcher", "writer", "reviewer", "coordinator", "router"} <= set(snapshot.agents)
    assert snapshot.rubrics["report"].pass_threshold == 3.5
    assert set(snapshot.versions) == set(FILES)
    assert snapshot.versions["agents.toml"].startswith("1@")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "agents.toml",
            '"search_wide", "read_passage"]',
            '"search_wide", "read_pasage"]',
            "agents.toml [agents.researcher] tools: unknown tool 'read_pasage'",
        ),
        (
            "agents.toml",
            'final_prompt = "writer"',
            'final_prompt = "writter"',
            "agents.toml [agents.writer] prompts: unknown prompt 'writter'",
        ),
        (
            "agents.toml",
            'output_schema = "RubricScores"',
            'output_schema = "Scores"',
            "[agents.reviewer] output_schema: unknown schema 'Scores'",
        ),
        (
            "agents.toml",
            'models = ["local/smollm2-135m-instruct"]\nmax_tokens = 48',
            'models = ["openai/gpt-unpriced"]\nmax_tokens = 48',
            "[agents.router] models: no price for openai/gpt-unpriced",
        ),
        (
            "tools.toml",
            'compensation = "cancel_ticket"',
            "",
            "tools.toml [tools.create_ticket]: value: Value error, a tool with a side effect"
            " needs a compensation",
        ),
        (
            "tools.toml",
            "quota_per_run = 4",
            "quota_per_run = 0",
            "tools.toml [tools.search_documents]: quota_per_run: Input should be greater than"
            " or equal to 1",
        ),
        (
            "rubrics.toml",
            "pass_threshold = 3.5",
            "pass_threshold = 9",
            "rubrics.toml [rubrics.report]: pass_threshold",
        ),
        (
            "routes.toml",
            "patterns = ['\\b(?:http",
            "patterns = ['(unclosed', '\\b(?:http",
            "routes.toml: intents.incident.patterns",
        ),
    ],
)
def test_a_broken_contract_names_its_file_and_field(
    contracts_copy: Path, file: str, old: str, new: str, message: str
) -> None:
    edit(contracts_copy / file, old, new)
    with pytest.raises(ContractError) as raised:
        load_contracts(contracts_copy)
    assert message in str(raised.value)


async def test_contracts_check_exits_0_when_valid_and_2_naming_the_problem(
    contracts_copy: Path,
) -> None:
    good = await run_script("client.py", "contracts", "check", "--dir", str(contracts_copy))
    assert good.code == 0, good.stderr
    assert "are valid" in good.stdout
    assert "agents.toml    1@" in good.stdout
    edit(
        contracts_copy / "agents.toml",
        'tools = ["search_documents", "create_ticket"]',
        'tools = ["delete_everything"]',
    )
    bad = await run_script("client.py", "contracts", "check", "--dir", str(contracts_copy))
    assert bad.code == 2  # bad input, as a bad argument is
    assert "[agents.incident_responder] tools: unknown tool 'delete_everything'" in bad.stderr


async def test_a_worker_refuses_to_start_on_invalid_contracts(contracts_copy: Path) -> None:
    edit(contracts_copy / "routes.toml", 'flow = "report"', 'flow = "reprot"')
    result = await run_script(
        "worker.py",
        "--address",
        "127.0.0.1:1",
        "--metrics-port",
        "0",
        "--contracts-dir",
        str(contracts_copy),
    )
    assert result.code == 1
    assert "invalid contracts" in result.stderr
    assert "routes.toml" in result.stderr
    assert "intents.report.flow" in result.stderr
