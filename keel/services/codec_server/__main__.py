"""Run the codec server: ``python -m keel.services.codec_server [--host H] [--port P] ...``.

The keys are the ones the workers use (``KEEL_CODEC_KEYS``, ``KEEL_CODEC_KEY_FILE`` or
``.data/codec.keys``); the bearer token comes from ``KEEL_CODEC_SERVER_TOKEN`` only,
never a flag, so that it does not show in the process list.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pydantic
import structlog
import uvicorn

from keel.infra.codec import EncryptionCodec
from keel.infra.keys import CodecSettings, KeyRingError, load_key_ring
from keel.infra.logging import configure_logging
from keel.infra.payload_store import external_storage
from keel.services.codec_server.app import CodecServerSettings, ExposureError, build_app

log = structlog.get_logger()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.services.codec_server", description=__doc__
    )
    parser.add_argument("--host", help="address to listen on (KEEL_CODEC_SERVER_HOST)")
    parser.add_argument("--port", type=int, help="port (KEEL_CODEC_SERVER_PORT, 8081)")
    parser.add_argument(
        "--cors-origin",
        action="append",
        help="a Web UI origin allowed from a browser; repeat for several",
    )
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    args = parser.parse_args(argv)
    configure_logging(args.log_format)
    overrides: dict[str, object] = {
        k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None
    }
    if args.cors_origin:
        overrides["cors_origins"] = ",".join(args.cors_origin)
    try:
        settings = CodecServerSettings.model_validate(overrides)
        codec_settings = CodecSettings()
        if not codec_settings.enabled:
            raise ExposureError("KEEL_CODEC=off: there is nothing for a codec server to decode")
        codec = EncryptionCodec(load_key_ring(codec_settings))
        app = build_app(codec, settings, external_storage())
    except (ExposureError, KeyRingError, pydantic.ValidationError) as error:
        print(f"codec server: {error}", file=sys.stderr)
        return 2
    log.info(
        "codec_server.started",
        host=settings.host,
        port=settings.port,
        cors_origins=settings.origins(),
        auth="bearer" if settings.token else "none (loopback only)",
        current_key=codec.current_key_id,
    )
    uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
