"""Secrets that reach a log line are redacted before it is written."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from harness.testing.stack import ROOT
from keel.infra.logging import REDACTED, redact_text

OPENAI_KEY = "sk-proj-Zq8vN3xT5yR1wK7pL2mB9cD4fG6hJ0aS"
ANTHROPIC_KEY = "sk-ant-api03-Hk2Lm9Pq4Rs7Tu1Vw5Xy8Za3Bc6De0Fg"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Incorrect API key provided: {OPENAI_KEY}.", OPENAI_KEY),
        (f"401 {{'error': 'invalid x-api-key: {ANTHROPIC_KEY}'}}", ANTHROPIC_KEY),
        (f"request headers: Authorization: Bearer {TOKEN}", TOKEN),
        ('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', "dXNlcjpwYXNzd29yZA=="),
        (f"echo: authorization=token {TOKEN}", TOKEN),
        (f"upstream said bearer {TOKEN} is expired", TOKEN),
        ("api_key=abc123secretvalue", "abc123secretvalue"),
    ],
)
def test_keys_tokens_and_authorization_values_are_redacted(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_ordinary_text_is_left_alone() -> None:
    for text in ["retry the sk-1 job", "the token bucket refilled", "Authorization failed"]:
        assert redact_text(text) == text


def test_a_worker_log_line_with_a_key_in_fields_and_traceback_is_redacted() -> None:
    """Through the real pipeline, JSON output, in a process of its own."""
    script = textwrap.dedent(
        f"""
        import logging, structlog
        from keel.infra.logging import configure_logging
        configure_logging("json")
        log = structlog.get_logger()
        log.warning("provider.error", body="key {OPENAI_KEY} refused",
                    headers={{"Authorization": "Bearer {TOKEN}"}})
        try:
            raise RuntimeError("echoed header Authorization: Bearer {TOKEN}")
        except RuntimeError:
            logging.getLogger("temporalio.activity").exception("failed with {ANTHROPIC_KEY}")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"].split(" ")[0] for line in lines] == ["provider.error", "failed"]
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, TOKEN):
        assert secret not in result.stderr
    assert lines[0]["headers"] == {"Authorization": REDACTED}
    assert "Traceback" in lines[1]["exception"]
    assert f"Bearer {REDACTED}" in lines[1]["exception"]
