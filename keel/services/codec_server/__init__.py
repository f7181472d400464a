"""The codec server: decrypts payloads for the Temporal Web UI and the `temporal` CLI."""

from keel.services.codec_server.app import CodecServerSettings, build_app, check_exposure

__all__ = ["CodecServerSettings", "build_app", "check_exposure"]
