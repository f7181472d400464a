"""The layers stay clean: activities never import workflows, and workflows import
from activities only the activity definitions they schedule.

Shared data (payloads, output-model registries, entity names) lives in keel/payloads/, so
either side can read it without reaching into the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules that define activities (`@activity.defn` methods): a workflow may import
# these to refer to an activity by its function object.
ACTIVITY_DEFINITIONS = {
    path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
    for path in (ROOT / "activities").rglob("activities.py")
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, wherever the import stands (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imports_under(package: str, prefix: str) -> dict[str, set[str]]:
    """For each file under `package`, the modules it imports that start with `prefix`."""
    result: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        hits = {m for m in imported_modules(path) if m == prefix or m.startswith(prefix + ".")}
        if hits:
            result[path.relative_to(ROOT).as_posix()] = hits
    return result


def test_the_activity_definition_modules_are_found() -> None:
    assert "activities.llm.activities" in ACTIVITY_DEFINITIONS
    assert "activities.tickets.activities" in ACTIVITY_DEFINITIONS


def test_no_activity_module_imports_a_workflow_module() -> None:
    assert imports_under("activities", "workflows") == {}


def test_workflows_import_only_activity_definitions_from_activities() -> None:
    beyond = {
        path: hits - ACTIVITY_DEFINITIONS
        for path, hits in imports_under("workflows", "activities").items()
        if hits - ACTIVITY_DEFINITIONS
    }
    assert beyond == {}


def test_the_keel_package_imports_neither_workflows_nor_activities() -> None:
    """keel/ is the library both sides build on: payloads, rules, graphs, infrastructure."""
    for below in ("payloads", "rules", "graphs", "routing", "infra"):
        assert imports_under(f"keel/{below}", "workflows") == {}
        assert imports_under(f"keel/{below}", "activities") == {}


def test_workflows_stay_off_the_process_side_of_keel() -> None:
    """Settings, the CLI and the services read the environment: no workflow may."""
    for side in ("keel.infra", "keel.cli", "keel.services"):
        assert imports_under("workflows", side) == {}


def test_payloads_import_only_payloads() -> None:
    """Histories hold payloads: they depend on no rule or service that could change."""
    beyond = {
        path: {m for m in hits if not m.startswith("keel.payloads")}
        for path, hits in imports_under("keel/payloads", "keel").items()
    }
    assert {path: hits for path, hits in beyond.items() if hits} == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from workflows.circuit_breaker import breaker_id\n")
    assert imported_modules(module) == {"workflows.circuit_breaker"}
