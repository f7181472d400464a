"""structlog set up once per process, at the entry point.

The SDK logs through the standard library and attaches `temporal_workflow` /
`temporal_activity` dicts; ExtraAdder lifts them into keys, so every line
carries workflow id, run id, activity and attempt.

Every line, ours or a library's, passes through `redact_secrets` after tracebacks are
formatted and before it is rendered: provider keys and Authorization values that slip
into a message, a field or an exception's text never reach the log file.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

REDACTED = "[REDACTED]"
# Fields whose whole value is a credential, whatever it looks like.
_SECRET_FIELDS = re.compile(r"(?i)^(authorization|api[_-]?key|x-api-key|token|secret|password)$")
# An Authorization or API-key header or field, quoted or not: the name stays, the value goes.
_HEADER = re.compile(
    r"(?i)(?P<name>(?:proxy-)?authorization|x-api-key|api[_-]?key)(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(?P<scheme>bearer|basic|token)\s+)?[^\s'\",;}]+"
)
# Provider keys: OpenAI (sk-, sk-proj-), Anthropic (sk-ant-) and look-alikes.
_PROVIDER_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")
# A long bearer token anywhere in text.
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")


def _header(match: re.Match[str]) -> str:
    scheme = f"{match['scheme']} " if match["scheme"] else ""
    return f"{match['name']}{match['sep']}{scheme}{REDACTED}"


def redact_text(text: str) -> str:
    text = _HEADER.sub(_header, text)
    text = _PROVIDER_KEY.sub(REDACTED, text)
    return _BEARER.sub("Bearer " + REDACTED, text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_FIELDS.match(k) else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The last line of defence: secrets are kept out of logs where they are made, too."""
    redacted: EventDict = _redact(event)
    return redacted


def _flatten_temporal(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in ("temporal_workflow", "temporal_activity"):
        info = event.pop(key, None)
        if isinstance(info, dict):
            for name in ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt"):
                if name in info:
                    event.setdefault(name, info[name])
    return event


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO"
) -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                _flatten_temporal,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        )
        return await self.next.execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds each activity's identity into structlog's context for every line it logs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)
