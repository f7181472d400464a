"""Every setting, read off the settings classes: the table in docs/operations.md.

`python -m keel.cli.settings_reference` prints it; the docs check compares the page's
table with this output, so a setting added to a class and not to the page (or the
other way round) fails `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from keel.infra.keys import CodecSettings
from keel.infra.payload_store import PayloadStoreSettings
from keel.infra.settings import PROJECT_ROOT, KeelSettings, TemporalSettings, WorkerSettings
from keel.infra.tokens import TicketsTokenSettings
from keel.infra.tracing import ENDPOINT_VARIABLE
from keel.services.codec_server.app import CodecServerSettings

# Each class, and who reads it. WorkerSettings' own fields come after KeelSettings'.
SOURCES: list[tuple[type[BaseSettings], str]] = [
    (TemporalSettings, "client, worker"),
    (KeelSettings, "client, worker"),
    (WorkerSettings, "worker"),
    (CodecSettings, "client, worker, codec server, devserver"),
    (CodecServerSettings, "codec server"),
    (PayloadStoreSettings, "client, worker"),
    (TicketsTokenSettings, "worker, ticket service, devserver"),
]
# Read straight from the environment, by the OpenTelemetry SDK's own names.
OTHERS = [
    (ENDPOINT_VARIABLE, "-", "client, worker", "OTLP endpoint; set, it turns tracing on"),
    ("OTEL_SERVICE_NAME", "keel-worker / keel-client", "client, worker", "the traces' service"),
]


class UndocumentedSetting(ValueError):
    """A settings field with no description: the table would have a hole."""


def _names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    prefix = str(cls.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return "-"
    # A path inside the checkout reads the same on every machine.
    return str(value).replace(str(PROJECT_ROOT), "<project>").replace("|", "\\|")


def rows() -> Iterator[tuple[str, str, str, str]]:
    """(variables, default, read by, what), one per setting, each variable named once."""
    seen: set[str] = set()
    for cls, readers in SOURCES:
        for name, field in cls.model_fields.items():
            names = _names(cls, name, field)
            if names[0] in seen:
                continue
            seen.update(names)
            if not field.description:
                raise UndocumentedSetting(f"{cls.__name__}.{name} has no description")
            yield " or ".join(f"`{n}`" for n in names), _default(field), readers, field.description
    for variable, default, readers, what in OTHERS:
        yield f"`{variable}`", default, readers, what


def table() -> str:
    lines = ["| variable | default | read by | what it sets |", "|---|---|---|---|"]
    for names, default, readers, what in rows():
        shown = f"`{default}`" if default != "-" else "-"
        lines.append(f"| {names} | {shown} | {readers} | {what} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
