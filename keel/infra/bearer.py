"""The bearer-token check the HTTP services (ticket service, codec server) share."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse


def wrong_bearer(request: Request, expected: bytes, message_key: str) -> JSONResponse | None:
    """The 401 for a call without `Authorization: <expected>`, or None to let it through.

    Compared in constant time, so the answer's timing tells nothing of the token.
    `message_key` is where each service's error bodies put their message.
    """
    given = request.headers.get("authorization", "").encode()
    if hmac.compare_digest(given, expected):
        return None
    return JSONResponse(
        {message_key: "missing or wrong bearer token"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
