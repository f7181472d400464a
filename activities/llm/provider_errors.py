"""Provider failures as typed errors: retry what time can fix, stop on what it cannot.

Timeouts, connection failures, 429 and 5xx are retryable (429 honours Retry-After
through `next_retry_delay`); authentication, bad requests and an over-long prompt
are not. Messages never carry the API key.
"""

from __future__ import annotations

import anthropic
import openai
from temporalio.exceptions import ApplicationError

from activities.retry_after import retry_after
from keel.payloads.errors import (
    CONTEXT_TOO_LONG,
    PROVIDER_AUTH,
    PROVIDER_BAD_REQUEST,
    PROVIDER_RATE_LIMITED,
    PROVIDER_UNAVAILABLE,
)

_TRANSPORT = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    anthropic.APITimeoutError,
    anthropic.APIConnectionError,
)
_STATUS = (openai.APIStatusError, anthropic.APIStatusError)
_CONTEXT_HINTS = (
    "context_length",
    "context length",
    "maximum context",
    "too long",
    "prompt is too long",
)


def provider_error(provider: str, error: Exception, secret: str | None = None) -> ApplicationError:
    """The typed error to raise from the activity in place of an SDK exception."""
    text = str(error)
    if secret:
        text = text.replace(secret, "***")
    if isinstance(error, _TRANSPORT):
        return ApplicationError(f"{provider}: unreachable: {text}", type=PROVIDER_UNAVAILABLE)
    if not isinstance(error, _STATUS):
        return ApplicationError(f"{provider}: {text}", type=PROVIDER_UNAVAILABLE)
    status = error.status_code
    message = f"{provider}: HTTP {status}: {text}"
    if status == 429:
        return ApplicationError(
            message, type=PROVIDER_RATE_LIMITED, next_retry_delay=retry_after(error.response)
        )
    if status >= 500 or status == 408:
        return ApplicationError(
            message, type=PROVIDER_UNAVAILABLE, next_retry_delay=retry_after(error.response)
        )
    if status in (401, 403):
        return ApplicationError(
            f"{message} (check the provider's API key setting)",
            type=PROVIDER_AUTH,
            non_retryable=True,
        )
    if any(hint in text.lower() for hint in _CONTEXT_HINTS):
        return ApplicationError(message, type=CONTEXT_TOO_LONG, non_retryable=True)
    return ApplicationError(message, type=PROVIDER_BAD_REQUEST, non_retryable=True)
