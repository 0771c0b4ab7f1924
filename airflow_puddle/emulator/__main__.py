"""``puddle-emulator``: run the Puddle emulator until SIGINT or SIGTERM.

Prints exactly one line to stdout when ready, ``puddle-emulator listening on
http://HOST:PORT``; logs go to stderr. Every option falls back to a
``PUDDLE_EMULATOR_*`` environment variable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import grpc

from airflow_puddle.emulator.faults import FaultRegistry, parse_fault_spec, parse_latency_spec
from airflow_puddle.emulator.server import (
    DEFAULT_API_KEY_ID,
    DEFAULT_API_SECRET_KEY,
    DEFAULT_PORT,
    EmulatorServer,
)

log = logging.getLogger("airflow_puddle.emulator")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _env(name: str, default: str) -> str:
    # argparse runs string defaults through the option's ``type`` too, so bad values get its error.
    return os.environ.get(f"PUDDLE_EMULATOR_{name}", default)


def _fault(spec: str) -> tuple[str, grpc.StatusCode, int]:
    try:
        return parse_fault_spec(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _latency(spec: str) -> tuple[str, float]:
    try:
        return parse_latency_spec(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``puddle-emulator``."""
    p = argparse.ArgumentParser(prog="puddle-emulator", description="Run a local Puddle emulator (gRPC).")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=_env("PORT", str(DEFAULT_PORT)),
        help=f"port to bind; 0 picks a free one (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--db", default=_env("DB", "./puddle-emulator.sqlite"),
        help="SQLite file holding the state; reused across restarts (default ./puddle-emulator.sqlite)",
    )
    p.add_argument("--api-key-id", default=_env("API_KEY_ID", DEFAULT_API_KEY_ID))
    p.add_argument("--api-secret-key", default=_env("API_SECRET_KEY", DEFAULT_API_SECRET_KEY))
    p.add_argument(
        "--step-seconds", type=float, default=_env("STEP_SECONDS", "2"),
        help="duration of each lifecycle step (default 2)",
    )
    p.add_argument("--cu-capacity", type=int, default=_env("CU_CAPACITY", "64"))
    p.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="METHOD:CODE:COUNT",
        help="fail the first COUNT calls of METHOD (or *) with CODE, e.g. GetSystem:UNAVAILABLE:2",
    )
    p.add_argument(
        "--latency", type=_latency, action="append", default=[], metavar="METHOD:SECONDS",
        help="delay every call of METHOD (or *) by SECONDS",
    )
    p.add_argument("--tls-cert", metavar="PEM_FILE", help="serve TLS with this certificate chain (with --tls-key)")
    p.add_argument("--tls-key", metavar="PEM_FILE", help="private key of --tls-cert")
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"), help="logging level (default INFO)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = (Path(args.tls_cert).read_bytes(), Path(args.tls_key).read_bytes()) if args.tls_cert else None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    faults = FaultRegistry()
    for method, code, count in args.fault:
        faults.inject(method, code, count)
    for method, seconds in args.latency:
        faults.set_latency(method, seconds)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    server = EmulatorServer(
        host=args.host, port=args.port, db_path=args.db, api_key_id=args.api_key_id,
        api_secret_key=args.api_secret_key, step_seconds=args.step_seconds,
        cu_capacity=args.cu_capacity, faults=faults, tls=tls,
    )
    address = server.start()
    log.info(
        "db=%s step_seconds=%g cu_capacity=%d faults=%d latency rules=%d",
        args.db, args.step_seconds, args.cu_capacity, len(args.fault), len(args.latency),
    )
    if args.host not in _LOOPBACK:
        log.warning("listening on %s: the EmulatorAdminService needs no token; keep it off shared networks",
                    args.host)
    print(f"puddle-emulator listening on {address}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop(grace=1.0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
