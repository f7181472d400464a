"""Stable error types: workflows branch on these, never on message text."""

from pydantic import ValidationError

SCHEMA_VIOLATION = "SchemaViolation"
UNKNOWN_SCHEMA = "UnknownSchema"
UNKNOWN_PROMPT = "UnknownPrompt"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
PROVIDER_RATE_LIMITED = "ProviderRateLimited"
PROVIDER_AUTH = "ProviderAuth"
PROVIDER_BAD_REQUEST = "ProviderBadRequest"
CONTEXT_TOO_LONG = "ContextTooLong"
UNPRICED_MODEL = "UnpricedModel"
BUDGET_EXHAUSTED = "BudgetExhausted"
# The tenant's day budget (contracts/tenants.toml) is spent: the run stops as at its own.
TENANT_BUDGET_EXHAUSTED = "TenantBudgetExhausted"
UNKNOWN_TENANT = "UnknownTenant"
CIRCUIT_OPEN = "CircuitOpen"
SCRIPT_MISSING = "ScriptMissing"
INGEST_PATH_NOT_FOUND = "IngestPathNotFound"
ACCESS_DENIED = "AccessDenied"
UNKNOWN_NAMESPACE = "UnknownNamespace"
NO_READABLE_NAMESPACE = "NoReadableNamespace"
INGEST_PATH_REFUSED = "IngestPathRefused"
PASSAGE_NOT_FOUND = "PassageNotFound"
NO_VALID_DRAFT = "NoValidDraft"
TICKET_REJECTED = "TicketRejected"
TICKET_SERVICE_UNAVAILABLE = "TicketServiceUnavailable"
TICKET_SERVICE_AUTH = "TicketServiceAuth"
SAGA_FAILED = "SagaFailed"
COMPENSATION_FAILED = "CompensationFailed"
UNKNOWN_TOOL = "UnknownTool"
UNKNOWN_AGENT = "UnknownAgent"
UNKNOWN_RUBRIC = "UnknownRubric"
TOOL_ARGUMENTS_INVALID = "ToolArgumentsInvalid"
# A tool's server did not answer (a transport or protocol failure): retried.
TOOL_SERVER_UNAVAILABLE = "ToolServerUnavailable"
# The server answered with a JSON-RPC error no retry can fix (unknown tool, bad params).
TOOL_CALL_REJECTED = "ToolCallRejected"
# A result that breaks the tool's output schema or the size limit: never retried.
TOOL_RESULT_INVALID = "ToolResultInvalid"
TOOL_RESULT_TOO_LARGE = "ToolResultTooLarge"
# A Python tool the worker cannot import (its module gone since the contracts loaded).
PYTHON_TOOL_UNAVAILABLE = "PythonToolUnavailable"
# An at-most-once side effect asked to run a second time: refused, never sent again.
SIDE_EFFECT_AMBIGUOUS = "SideEffectAmbiguous"

# Refusals: the caller asked for something it may not have. They are expected
# outcomes, not bugs, so their failures carry no stack trace (keel/infra/codec.py): the
# history, the Web UI and the CLI show one line naming the reason.
REFUSALS = frozenset(
    {ACCESS_DENIED, UNKNOWN_NAMESPACE, NO_READABLE_NAMESPACE, INGEST_PATH_REFUSED, UNKNOWN_TENANT}
)


def describe_validation_error(err: ValidationError, limit: int = 5) -> str:
    """A short summary naming each bad field, readable by a person or a model."""
    parts = []
    for e in err.errors()[:limit]:
        where = ".".join(str(x) for x in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)
