"""Ingestion reads only under the configured roots, into declared namespaces only.

`client.py ingest /etc` used to create a namespace `etc`, readable by anyone; now
the worker refuses it in one line before it reads a file, and the store is untouched.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.documents.activities import DocumentActivities
from activities.documents.store import DocumentStore
from harness.testing.cli import cli_env
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import DEMO_CORPUS, worker_settings
from keel.infra.settings import PROJECT_ROOT, WorkerSettings
from keel.payloads.documents import IngestRequest


def activities(store: DocumentStore, *roots: Path) -> DocumentActivities:
    return DocumentActivities(store, {"demo": "public", "postmortems": "restricted"}, roots)


def refusal(documents: DocumentActivities, path: Path | str, namespace: str = "demo") -> str:
    with pytest.raises(ApplicationError) as refused:
        documents.check_ingest(IngestRequest(path=str(path), namespace=namespace))
    assert refused.value.non_retryable
    assert "\n" not in refused.value.message
    return f"{refused.value.type}: {refused.value.message}"


def test_the_default_root_is_the_projects_corpus_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_INGEST_ROOTS", raising=False)
    assert WorkerSettings().ingest_root_paths() == [PROJECT_ROOT / "corpus"]
    monkeypatch.setenv("KEEL_INGEST_ROOTS", "/srv/docs:/tmp/../srv/more:")
    assert WorkerSettings().ingest_root_paths() == [Path("/srv/docs"), Path("/srv/more")]


def test_a_folder_outside_the_roots_is_refused_however_it_is_spelled(
    tmp_path: Path, store: DocumentStore
) -> None:
    root = tmp_path / "corpus"
    (root / "demo").mkdir(parents=True)
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    documents = activities(store, root)
    assert documents.check_ingest(IngestRequest(path=str(root / "demo"))) == root / "demo"
    for path in ("/etc", root / ".." / "private", root / "escape", outside):
        assert refusal(documents, path).startswith("IngestPathRefused: ")
    assert "outside the ingest roots" in refusal(documents, "/etc")
    # No root configured: nothing may be ingested.
    assert refusal(activities(store), root / "demo").startswith("IngestPathRefused: ")


def test_an_undeclared_namespace_is_refused_before_the_path_is_looked_at(
    tmp_path: Path, store: DocumentStore
) -> None:
    documents = activities(store, tmp_path)
    assert refusal(documents, tmp_path, "etc") == (
        "UnknownNamespace: namespace 'etc' is not declared in routes.toml"
    )


def test_a_file_linking_out_of_the_folder_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "kept.md").write_text("# Kept\n\nA document inside the folder.\n")
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nOutside the folder.\n")
    (folder / "linked.md").symlink_to(secret)
    result = DocumentStore(tmp_path / "documents.db").ingest_folder(folder, "demo")
    assert result.documents == 1
    assert result.skipped == ["linked.md: a link to outside the folder"]


def namespaces_in(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT DISTINCT namespace FROM documents")}


@pytest.mark.timeout(180)
async def test_client_ingest_of_etc_is_one_line_exit_2_and_writes_nothing(
    server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    env = cli_env(settings)
    base = ["--address", server_address, "ingest"]
    async with worker_process(server_address, settings, tmp_path):
        undeclared = await run_script("client.py", *base, "/etc", "--corpus", "etc", env=env)
        outside = await run_script("client.py", *base, "/etc", "--corpus", "demo", env=env)
        on_worker = await run_script(
            "client.py", *base, "/etc", "--corpus", "demo", "--path-on-worker", env=env
        )
        allowed = await run_script(
            "client.py", *base, str(DEMO_CORPUS), "--corpus", "demo", env=env
        )
    assert allowed.code == 0, allowed.stderr
    for result, reason in (
        (undeclared, "namespace 'etc' is not declared in routes.toml"),
        (outside, "/etc is outside the ingest roots"),
        (on_worker, "/etc is outside the ingest roots"),
    ):
        assert result.code == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("ingest refused: ")
        assert reason in lines[0]
    assert namespaces_in(tmp_path / "documents.db") == {"demo"}
