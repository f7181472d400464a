"""Settings read from the environment (and flags, via init overrides).

Temporal connection settings use the names Temporal's own tools read
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS paths),
so one environment serves the CLI, the worker and ``temporal`` itself.
Our own settings carry the ``KEEL_`` prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".data")


class TemporalSettings(BaseSettings):
    """Where the Temporal service is and how to authenticate to it."""

    model_config = SettingsConfigDict(env_prefix="TEMPORAL_", extra="ignore")

    address: str = "localhost:7233"
    namespace: str = "default"
    api_key: SecretStr | None = None
    tls: bool = False
    tls_client_cert_path: Path | None = None
    tls_client_key_path: Path | None = None
    tls_server_ca_cert_path: Path | None = None
    tls_server_name: str | None = None


class KeelSettings(BaseSettings):
    """Settings shared by the worker and the CLI."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    task_queue: str = "research"
    llm_task_queue: str = "llm"
    ui_url: str = "http://localhost:8233"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"


class WorkerSettings(KeelSettings):
    """Settings of one worker process."""

    worker_role: Literal["all", "orchestration", "llm"] = "all"
    llm_concurrency: int = Field(default=1, ge=1)
    documents_db: Path = DATA_DIR / "documents.db"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    local_model_path: Path | None = None
    scripted_dir: Path = Path("tests/fixtures/scripted")
    tickets_url: str = "http://127.0.0.1:8400"
    graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
