"""docker-compose.yml and the Dockerfile, checked as far as possible without a Docker engine."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from harness.testing.stack import ROOT
from keel.infra.binaries import DEV_SERVER_ARGS
from keel.infra.keys import CodecSettings
from keel.infra.payload_store import PayloadStoreSettings
from keel.infra.settings import TemporalSettings, WorkerSettings
from keel.infra.tokens import TicketsTokenSettings
from keel.services.codec_server import CodecServerSettings

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "worker-orchestration",
    "worker-llm",
    "tickets",
    "codec-server",
    "jaeger",
    "minio",
    "minio-setup",
}
# Compose refuses to start without these (the payload keys and the codec server's token).
REQUIRED_SECRETS = {
    "KEEL_CODEC_KEYS": "k1:" + "A" * 44,
    "KEEL_CODEC_SERVER_TOKEN": "t" * 32,
    "KEEL_TICKETS_TOKEN": "s" * 32,
    "MINIO_ROOT_PASSWORD": "m" * 24,
}
WORKERS = ("worker-orchestration", "worker-llm")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def docker_compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's)")
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={**clean, **env},
    )


def test_docker_compose_accepts_the_file() -> None:
    result = docker_compose_config(REQUIRED_SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_docker_compose_refuses_to_start_without_keys_or_token(missing: str) -> None:
    result = docker_compose_config({k: v for k, v in REQUIRED_SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_cluster_services_have_health_checks_and_the_ui_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name in ("postgresql", "temporal", "tickets", *WORKERS):
        assert services[name]["healthcheck"]["test"], name
    assert "8233:8080" in services["temporal-ui"]["ports"]
    assert "7233:7233" in services["temporal"]["ports"]
    assert services["temporal-schema"]["depends_on"]["postgresql"]["condition"] == (
        "service_healthy"
    )


def _tag_default(image: str) -> tuple[str, str]:
    """`temporalio/server:${TEMPORAL_VERSION:-1.31.0}` -> ("temporalio/server", "1.31.0")."""
    match = re.fullmatch(r"([\w./-]+):\$\{\w+:-([\w.-]+)\}", image)
    assert match, f"{image}: a pinned tag that can be overridden"
    return match.group(1), match.group(2)


def test_temporal_runs_on_maintained_images_after_a_schema_step(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert not any("auto-setup" in str(s.get("image", "")) for s in services.values())
    server, server_tag = _tag_default(services["temporal"]["image"])
    schema, schema_tag = _tag_default(services["temporal-schema"]["image"])
    tools, tools_tag = _tag_default(services["temporal-admin-tools"]["image"])
    assert (server, schema, tools) == (
        "temporalio/server", "temporalio/admin-tools", "temporalio/admin-tools"
    )  # fmt: skip
    assert server_tag == schema_tag == tools_tag  # the schema matches the server
    # The server starts only once the schema step has finished without an error.
    assert services["temporal"]["depends_on"] == {
        "temporal-schema": {"condition": "service_completed_successfully"}
    }
    script = (ROOT / "deploy" / "temporal-schema.sh").read_text()
    assert "/deploy/temporal-schema.sh" in services["temporal-schema"]["entrypoint"]
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert f'sql --db "$db" {step}' in script
    assert "temporal:temporal temporal_visibility:visibility" in script


def test_the_schema_script_is_valid_shell() -> None:
    result = subprocess.run(
        ["sh", "-n", str(ROOT / "deploy" / "temporal-schema.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_workers_scale_with_compose_scale(compose: dict[str, Any]) -> None:
    """`--scale` starts N copies: none may claim a fixed name or a host port."""
    for name in WORKERS:
        service = compose["services"][name]
        assert "container_name" not in service, name
        assert "ports" not in service, name
        assert "hostname" not in service, name


def test_admin_tools_create_the_namespace_the_server_image_lacks(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["temporal-admin-tools"]["command"])
    assert "namespace create --namespace default" in command


def test_workers_use_only_settings_the_worker_reads(compose: dict[str, Any]) -> None:
    known = env_names(TemporalSettings) | env_names(WorkerSettings) | env_names(CodecSettings)
    known |= env_names(PayloadStoreSettings)
    for name in WORKERS:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        env: dict[str, str] = service["environment"]
        ours = {k for k in env if k.startswith(("TEMPORAL_", "KEEL_"))}
        assert ours <= known, ours - known
        # The values parse as the worker would parse them.
        WorkerSettings.model_validate(
            {k.removeprefix("KEEL_").lower(): v for k, v in env.items() if k.startswith("KEEL_")}
        )
        assert "KEEL_CODEC_KEYS" in env  # workers encrypt, with the keys from the environment
        assert "KEEL_CODEC" not in env  # never switched off
        # Large payloads to MinIO, where every worker (and the CLI) reads them back.
        store = PayloadStoreSettings.model_validate(
            {k.removeprefix("KEEL_").lower(): v for k, v in env.items() if k.startswith("KEEL_")}
        )
        assert store.payload_store == "s3"
        assert store.payload_s3_endpoint == "http://minio:9000"
        assert env["AWS_SECRET_ACCESS_KEY"]
    roles = {compose["services"][n]["environment"]["KEEL_WORKER_ROLE"] for n in WORKERS}
    assert roles == {"orchestration", "llm"}


def test_workers_export_traces_to_the_pinned_trace_viewer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    jaeger = services["jaeger"]
    image = jaeger["image"]
    assert image.startswith("jaegertracing/jaeger:${JAEGER_VERSION:-2.")
    assert "latest" not in image
    assert "16686:16686" in jaeger["ports"]
    assert "127.0.0.1:4318:4318" in jaeger["ports"]
    names = set()
    for name in WORKERS:
        env = services[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        names.add(env["OTEL_SERVICE_NAME"])
        assert services[name]["depends_on"]["jaeger"]["condition"] == "service_started"
    assert len(names) == len(WORKERS)


def test_admin_tools_register_both_search_attributes(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["temporal-admin-tools"]["command"])
    assert "search-attribute create" in command
    for attribute in ("ResearchNode", "ResearchStatus"):
        assert attribute in command


def test_dockerfile_installs_the_project_and_runs_the_worker() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^CMD \["python", "worker.py"\]$', text, re.M)
    assert "pip install" in text
    assert "-DGGML_NATIVE=OFF" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in (p.removesuffix("*") for p in project["packages"]["find"]["include"]):
        assert f"COPY {package} ./{package}" in text, package
    for module in project["py-modules"]:
        assert f"{module}.py" in text, module


def test_the_cluster_dynamic_config_matches_the_embedded_servers_tuning() -> None:
    path = ROOT / "deploy" / "dynamicconfig" / "development-sql.yaml"
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    assert config["history.transferProcessorMaxPollRPS"] == [{"value": 1000, "constraints": {}}]
    # Every dynamic setting of the embedded server holds on the cluster too (fairness and
    # its one partition per queue among them), with the same value.
    embedded = [
        value.partition("=")
        for flag, value in itertools.pairwise(DEV_SERVER_ARGS)
        if flag == "--dynamic-config-value"
    ]
    assert {name for name, _, _ in embedded} >= {
        "history.transferProcessorMaxPollRPS",
        "matching.enableFairness",
        "matching.numTaskqueueReadPartitions",
    }
    for name, _, value in embedded:
        assert config[name] == [{"value": yaml.safe_load(value), "constraints": {}}], name
    assert config["matching.useNewMatcher"] == [{"value": True, "constraints": {}}]


def test_the_codec_server_needs_its_token_publishes_on_loopback_and_serves_the_ui(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    codec = services["codec-server"]
    command = codec["command"]
    assert command[:3] == ["python", "-m", "keel.services.codec_server"]
    # It listens beyond loopback inside the network, so the token is mandatory there.
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "KEEL_CODEC_SERVER_TOKEN" in codec["environment"]
    assert "KEEL_CODEC_KEYS" in codec["environment"]
    assert codec["ports"] == ["127.0.0.1:8081:8081"]
    ui_origin = services["temporal-ui"]["environment"]["TEMPORAL_CORS_ORIGINS"]
    assert command[command.index("--cors-origin") + 1] == ui_origin
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == (
        "http://localhost:8081"
    )
    known = env_names(CodecServerSettings) | env_names(CodecSettings) | {"KEEL_LOG_FORMAT"}
    assert set(codec["environment"]) <= known


def test_the_ticket_service_needs_its_token_and_stays_on_the_compose_network(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    tickets = services["tickets"]
    assert "ports" not in tickets  # reachable from the workers only, never from the host
    assert set(tickets["environment"]) == {"KEEL_TICKETS_TOKEN"}
    assert set(tickets["environment"]) <= env_names(TicketsTokenSettings)
    orchestration = services["worker-orchestration"]["environment"]
    assert orchestration["KEEL_TICKETS_URL"] == "http://tickets:8400"
    assert orchestration["KEEL_TICKETS_TOKEN"] == tickets["environment"]["KEEL_TICKETS_TOKEN"]


def test_minio_holds_the_payload_bucket_before_any_worker_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    image = services["minio"]["image"]
    assert image.startswith("minio/minio:${MINIO_VERSION:-RELEASE.")
    setup = services["minio-setup"]
    assert "mc mb --ignore-existing keel/keel-payloads" in " ".join(setup["command"])
    for name in WORKERS:
        assert services[name]["depends_on"]["minio-setup"]["condition"] == (
            "service_completed_successfully"
        )
    assert "127.0.0.1:9000:9000" in services["minio"]["ports"]
