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
CIRCUIT_OPEN = "CircuitOpen"
SCRIPT_MISSING = "ScriptMissing"
INGEST_PATH_NOT_FOUND = "IngestPathNotFound"
ACCESS_DENIED = "AccessDenied"
PASSAGE_NOT_FOUND = "PassageNotFound"
NO_VALID_DRAFT = "NoValidDraft"
TICKET_REJECTED = "TicketRejected"
TICKET_SERVICE_UNAVAILABLE = "TicketServiceUnavailable"
SAGA_FAILED = "SagaFailed"
COMPENSATION_FAILED = "CompensationFailed"
UNKNOWN_TOOL = "UnknownTool"
UNKNOWN_AGENT = "UnknownAgent"
UNKNOWN_RUBRIC = "UnknownRubric"
TOOL_ARGUMENTS_INVALID = "ToolArgumentsInvalid"


def describe_validation_error(err: ValidationError, limit: int = 5) -> str:
    """A short summary naming each bad field, readable by a person or a model."""
    parts = []
    for e in err.errors()[:limit]:
        where = ".".join(str(x) for x in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)
