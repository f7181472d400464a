"""Payload encryption keys: where they come from, which one is current, how they rotate.

A key ring is an ordered list of (key id, 256-bit key); the last one is current and
encrypts every new payload, the others only decrypt. Each encrypted payload records
the id of its key, so a history written under an old key still decodes after a
rotation as long as that key stays in the ring: retire a key only once no run that
used it is retained by the server.

Keys come, in this order, from ``KEEL_CODEC_KEYS`` (``id:base64key`` pairs separated
by commas), from ``KEEL_CODEC_KEY_FILE``, or from ``.data/codec.keys``, which
``devserver.py start`` writes (mode 0600) the first time it runs without a key.
A key file holds one ``id base64key`` per line, oldest first; ``#`` starts a comment.

    python -m keel.infra.keys new  [--key-file PATH]   # create the file with a first key
    python -m keel.infra.keys rotate [--key-file PATH] # append a new current key
    python -m keel.infra.keys list [--key-file PATH]   # ids only, current last
    python -m keel.infra.keys env [--key-file PATH]    # the file as a KEEL_CODEC_KEYS value
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.infra.settings import DATA_DIR

KEY_BYTES = 32  # AES-256
DEFAULT_KEY_FILE = DATA_DIR / "codec.keys"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyRingError(ValueError):
    """A key source that cannot be used; the message names the source and the fix."""


class CodecSettings(BaseSettings):
    """Whether payloads are encrypted and with which keys (``KEEL_CODEC*``)."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    codec: Literal["on", "off"] = Field(
        default="on", description="off stores payloads in plaintext; only by explicit choice"
    )
    codec_keys: SecretStr | None = Field(
        default=None, description="id:base64key pairs separated by commas, oldest first"
    )
    codec_key_file: Path | None = Field(
        default=None, description="key file, one `id base64key` per line, oldest first"
    )

    @property
    def enabled(self) -> bool:
        return self.codec == "on"

    def configured(self) -> bool:
        """True when the user named keys, rather than relying on the default file."""
        return self.codec_keys is not None or self.codec_key_file is not None


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, oldest first; the last one is current."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("a key ring needs at least one key")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyRingError(f"duplicate key ids in {ids}")
        for key_id, key in self.keys:
            if not _KEY_ID.match(key_id):
                raise KeyRingError(f"key id {key_id!r} must match {_KEY_ID.pattern}")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} has {len(key)} bytes, AES-256 needs 32")

    @property
    def current_id(self) -> str:
        return self.keys[-1][0]

    def by_id(self) -> dict[str, bytes]:
        return dict(self.keys)

    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]


def new_key_id() -> str:
    """Date plus randomness: sortable by eye, unique without coordination."""
    return time.strftime("%Y%m%d", time.gmtime()) + "-" + secrets.token_hex(4)


def _decode_key(key_id: str, text: str, source: str) -> tuple[str, bytes]:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyRingError(f"{source}: key {key_id!r} is not base64") from error
    return key_id.strip(), key


def parse_inline(text: str, source: str = "KEEL_CODEC_KEYS") -> KeyRing:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, key = item.partition(":")
        if not sep:
            raise KeyRingError(f"{source}: expected id:base64key, got an item without ':'")
        pairs.append(_decode_key(key_id, key, source))
    return KeyRing(tuple(pairs))


def read_key_file(path: Path) -> KeyRing:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise KeyRingError(f"cannot read the key file {path}: {error.strerror}") from error
    pairs = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise KeyRingError(f"{path}:{number}: expected `id base64key`")
        pairs.append(_decode_key(parts[0], parts[1], f"{path}:{number}"))
    return KeyRing(tuple(pairs))


def load_key_ring(settings: CodecSettings) -> KeyRing:
    """The configured keys, or the default file; no key at all is an error, never plaintext."""
    if settings.codec_keys is not None:
        return parse_inline(settings.codec_keys.get_secret_value())
    path = settings.codec_key_file or DEFAULT_KEY_FILE
    if settings.codec_key_file is None and not path.exists():
        raise KeyRingError(
            "no payload encryption key: set KEEL_CODEC_KEYS or KEEL_CODEC_KEY_FILE,"
            f" or run `python devserver.py start`, which writes {DEFAULT_KEY_FILE};"
            " KEEL_CODEC=off stores histories in plaintext"
        )
    return read_key_file(path)


def _line(key_id: str, key: bytes) -> str:
    return f"{key_id} {base64.b64encode(key).decode()}\n"


def append_new_key(path: Path) -> str:
    """Append a fresh key, which becomes current; the file is created 0600 if missing.

    Appending (never rewriting) keeps every older key, so histories written under
    them still decode.
    """
    key_id = new_key_id()
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = read_key_file(path).ids() if path.exists() else []
    if key_id in existing:  # pragma: no cover - 32 random bits on the same day
        key_id = new_key_id()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        if not existing:
            handle.write("# keel payload keys, oldest first; the last one is current\n")
        handle.write(_line(key_id, secrets.token_bytes(KEY_BYTES)))
    os.chmod(path, 0o600)
    return key_id


def ensure_key_file(path: Path) -> str | None:
    """Write a first key to `path` unless it exists; returns the new id, or None."""
    if path.exists():
        return None
    return append_new_key(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.infra.keys", description="Manage the payload encryption key file."
    )
    parser.add_argument("action", choices=["new", "rotate", "list", "env"])
    parser.add_argument("--key-file", type=Path, help="default: KEEL_CODEC_KEY_FILE or .data/")
    args = parser.parse_args(argv)
    settings = CodecSettings()
    path: Path = args.key_file or settings.codec_key_file or DEFAULT_KEY_FILE
    try:
        if args.action == "new":
            if path.exists():
                print(f"error: {path} exists; use `rotate` to add a key", file=sys.stderr)
                return 1
            print(f"{path}: key {append_new_key(path)} (current)")
        elif args.action == "rotate":
            if not path.exists():
                print(f"error: {path} does not exist; use `new`", file=sys.stderr)
                return 1
            print(f"{path}: key {append_new_key(path)} (current)")
        elif args.action == "env":
            print(
                ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in read_key_file(path).keys)
            )
        else:
            ring = read_key_file(path)
            for key_id in ring.ids():
                print(key_id + (" (current)" if key_id == ring.current_id else ""))
    except KeyRingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
