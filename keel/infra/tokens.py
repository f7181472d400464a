"""The ticket service's bearer token: where the service and its callers find it.

The service refuses to start without one, on any address: it creates and cancels
tickets for whoever can reach it, and a port on loopback is reachable by every
user and every web page's DNS rebinding on the machine. Its callers (the worker's
ticket activities, the tests, the chaos harness) read the same token:

1. ``KEEL_TICKETS_TOKEN``, the token itself (16 characters at least);
2. ``KEEL_TICKETS_TOKEN_FILE``, a file holding it;
3. ``.data/tickets.token``, which ``devserver.py start`` writes (mode 0600) the
   first time it runs without either.

Never a command-line flag: arguments show in the process list.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.infra.settings import DATA_DIR

DEFAULT_TOKEN_FILE = DATA_DIR / "tickets.token"
MIN_TOKEN_CHARS = 16


class TokenError(ValueError):
    """A token source that cannot be used; the message names the source and the fix."""


class TicketsTokenSettings(BaseSettings):
    """``KEEL_TICKETS_TOKEN`` or ``KEEL_TICKETS_TOKEN_FILE``."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    tickets_token: SecretStr | None = Field(default=None, description="the bearer token")
    tickets_token_file: Path | None = Field(default=None, description="a file holding it")

    def configured(self) -> bool:
        """True when the user named a token, rather than relying on the default file."""
        return self.tickets_token is not None or self.tickets_token_file is not None


def load_tickets_token(settings: TicketsTokenSettings | None = None) -> str | None:
    """The configured token, or the default file's; None when there is none at all."""
    settings = settings or TicketsTokenSettings()
    if settings.tickets_token is not None:
        token, source = settings.tickets_token.get_secret_value().strip(), "KEEL_TICKETS_TOKEN"
    else:
        path = settings.tickets_token_file or DEFAULT_TOKEN_FILE
        if settings.tickets_token_file is None and not path.exists():
            return None
        try:
            token, source = path.read_text(encoding="utf-8").strip(), str(path)
        except OSError as error:
            raise TokenError(f"cannot read the token file {path}: {error.strerror}") from None
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenError(f"the ticket service token in {source} needs {MIN_TOKEN_CHARS}+ chars")
    return token


def ensure_token_file(path: Path) -> bool:
    """Write a new random token to `path` (0600) unless it exists; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return True
