"""Map the service's HTTP answers to typed errors, so retries go where they help."""

from __future__ import annotations

import httpx
from temporalio.exceptions import ApplicationError

from activities.retry_after import retry_after
from keel.payloads.errors import TICKET_REJECTED, TICKET_SERVICE_AUTH, TICKET_SERVICE_UNAVAILABLE

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def raise_for_status(response: httpx.Response) -> None:
    """4xx (but 408/425/429): the request itself is wrong, retrying cannot help."""
    if response.is_success:
        return
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text
    message = (
        f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}"
    )
    if response.status_code in (401, 403):
        # The worker's token is missing or not the service's: a retry sends the same one.
        raise ApplicationError(
            f"{message}: the ticket service refused the worker's bearer token;"
            " give the worker the service's KEEL_TICKETS_TOKEN",
            type=TICKET_SERVICE_AUTH,
            non_retryable=True,
        )
    if response.status_code in RETRYABLE_STATUS:
        raise ApplicationError(
            message, type=TICKET_SERVICE_UNAVAILABLE, next_retry_delay=retry_after(response)
        )
    raise ApplicationError(message, type=TICKET_REJECTED, non_retryable=True)
