"""Named timeouts and retry policies, shared by the flows' nodes."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from keel.payloads.errors import (
    ACCESS_DENIED,
    CIRCUIT_OPEN,
    PASSAGE_NOT_FOUND,
    PYTHON_TOOL_UNAVAILABLE,
    SCHEMA_VIOLATION,
    SCRIPT_MISSING,
    TICKET_REJECTED,
    TOOL_ARGUMENTS_INVALID,
    TOOL_CALL_REJECTED,
    TOOL_RESULT_INVALID,
    TOOL_RESULT_TOO_LARGE,
    UNKNOWN_PROMPT,
    UNKNOWN_SCHEMA,
    UNKNOWN_TOOL,
)


def _backoff(
    first: timedelta, cap: timedelta, *, attempts: int, non_retryable: list[str] | None = None
) -> RetryPolicy:
    """Exponential backoff (doubling from `first` up to `cap`); 0 attempts: no limit."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=cap,
        maximum_attempts=attempts,
        non_retryable_error_types=non_retryable,
    )


# Every activity that can run for more than a few seconds heartbeats (about once a
# second, activities/heartbeat.py): a worker that died is noticed within this, not
# after the start-to-close timeout, and a cancellation reaches the running call.
HEARTBEAT_TIMEOUT = timedelta(seconds=5)

# Transport failures (a crashed worker, a stalled model) are retried with backoff;
# schema failures are not retried here: the workflow re-asks with the error instead.
LLM_RETRY = _backoff(
    timedelta(seconds=1),
    timedelta(seconds=30),
    attempts=4,
    non_retryable=[SCHEMA_VIOLATION, UNKNOWN_SCHEMA, UNKNOWN_PROMPT, SCRIPT_MISSING],
)
# A local model on a CPU may take a while per call; the timeout bounds one attempt.
LLM_TIMEOUT = timedelta(minutes=3)

SEARCH_RETRY = _backoff(timedelta(milliseconds=200), timedelta(seconds=5), attempts=5)
SEARCH_TIMEOUT = timedelta(seconds=20)

# A side effect is safe to retry because it carries an idempotency key; a rejected
# request (4xx) is not worth retrying and sends the saga to its compensations.
SIDE_EFFECT_RETRY = _backoff(
    timedelta(milliseconds=500), timedelta(seconds=10), attempts=8, non_retryable=[TICKET_REJECTED]
)
# Compensations must finish: retried without limit, with a capped backoff.
COMPENSATION_RETRY = _backoff(timedelta(milliseconds=500), timedelta(seconds=30), attempts=0)

# Agents' tools: fast, local or idempotent, so retried with a short backoff (an MCP
# server that died is started again by the retry); a bad argument, a refused
# namespace, an open breaker, a server's rejection or a result that breaks its schema
# or the size limit is an answer for the agent, not something a retry could fix.
TOOL_RETRY = _backoff(
    timedelta(milliseconds=200),
    timedelta(seconds=5),
    attempts=5,
    non_retryable=[
        UNKNOWN_TOOL,
        TOOL_ARGUMENTS_INVALID,
        ACCESS_DENIED,
        CIRCUIT_OPEN,
        TICKET_REJECTED,
        PASSAGE_NOT_FOUND,
        TOOL_CALL_REJECTED,
        TOOL_RESULT_INVALID,
        TOOL_RESULT_TOO_LARGE,
        PYTHON_TOOL_UNAVAILABLE,
    ],
)
TOOL_TIMEOUT = timedelta(seconds=20)
# An at-most-once side effect (a tool without an idempotency key) is sent on one
# attempt: an outcome lost with the worker waits for an operator, never a resend.
AT_MOST_ONCE_RETRY = RetryPolicy(maximum_attempts=1)

# Reading the worker's validated contracts: local, quick, safe to repeat.
CONTRACTS_RETRY = RetryPolicy(maximum_attempts=5)
CONTRACTS_TIMEOUT = timedelta(seconds=10)
