"""``puddle-emulator``: run the Puddle emulator until SIGINT or SIGTERM.

Prints exactly one line to stdout when ready, ``puddle-emulator listening on
http://HOST:PORT`` (``http://[::1]:PORT`` for an IPv6 host); logs go to stderr. Every
option falls back to a ``PUDDLE_EMULATOR_*`` environment variable. A bad flag or file (a
missing or unwritable ``--db`` directory, a read-only or corrupt database, ``--step-seconds``
0 or NaN, an empty key, a port out of range, a bad ``--fault`` or ``--latency``) is one line
on stderr naming the flag and the rule, and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, TypeVar

from airflow_puddle.emulator.faults import FaultRegistry, parse_fault_spec, parse_latency_spec
from airflow_puddle.emulator.h2o3 import RuntimeMissing, find_runtime
from airflow_puddle.emulator.limits import (
    EmulatorConfigError,
    setting_host,
    setting_int,
    setting_port,
    setting_step_seconds,
    setting_text,
)
from airflow_puddle.emulator.nodes import NODE_MEMORY_MB, default_max_nodes
from airflow_puddle.emulator.server import (
    DEFAULT_API_KEY_ID,
    DEFAULT_API_SECRET_KEY,
    DEFAULT_PORT,
    H2O3_MODES,
    EmulatorServer,
)

log = logging.getLogger("airflow_puddle.emulator")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
T = TypeVar("T")


_FLAGS = {
    "db_path": "--db", "step_seconds": "--step-seconds", "api_key_id": "--api-key-id",
    "api_secret_key": "--api-secret-key", "cu_capacity": "--cu-capacity", "host": "--host", "port": "--port",
    "tls": "--tls-cert", "tls_cert": "--tls-cert", "tls_key": "--tls-key", "h2o3": "--h2o3",
    "h2o3_max_nodes": "--h2o3-max-nodes",
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _env(name: str, default: str) -> str:
    # argparse runs string defaults through the option's ``type`` too, so bad values get its error.
    return os.environ.get(f"PUDDLE_EMULATOR_{name}", default)


def _checked(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` that reports a check's ``ValueError`` as the option's one-line error."""

    def convert(text: str) -> T:
        try:
            return check(text)
        except EmulatorConfigError as err:
            raise argparse.ArgumentTypeError(err.rule) from None
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return convert


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def _log_level(text: str) -> str:
    if text.upper() not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}, got {text!r}")
    return text.upper()


_port = _checked(lambda text: setting_port(_whole(text)))
_step_seconds = _checked(lambda text: setting_step_seconds(_number(text)))
_cu_capacity = _checked(lambda text: setting_int("cu_capacity", _whole(text), minimum=0))
_text = _checked(lambda text: setting_text("value", text))
_host = _checked(setting_host)
_fault = _checked(parse_fault_spec)
_max_nodes = _checked(lambda text: setting_int("h2o3_max_nodes", _whole(text), minimum=1, maximum=256))
_latency = _checked(parse_latency_spec)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``puddle-emulator``."""
    p = _Parser(prog="puddle-emulator", description="Run a local Puddle emulator (gRPC).")
    p.add_argument(
        "--host", type=_host, default=_env("HOST", "127.0.0.1"),
        help="address to bind, IPv4 or IPv6 such as ::1 (default 127.0.0.1)",
    )
    p.add_argument(
        "--port", type=_port, default=_env("PORT", str(DEFAULT_PORT)),
        help=f"port to bind; 0 picks a free one (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--db", default=_env("DB", "./puddle-emulator.sqlite"),
        help="SQLite file holding the state; reused across restarts (default ./puddle-emulator.sqlite)",
    )
    p.add_argument("--api-key-id", type=_text, default=_env("API_KEY_ID", DEFAULT_API_KEY_ID),
                   help=f"the one API key ID that logs in (default {DEFAULT_API_KEY_ID})")
    p.add_argument("--api-secret-key", type=_text, default=_env("API_SECRET_KEY", DEFAULT_API_SECRET_KEY),
                   help=f"its API secret key (default {DEFAULT_API_SECRET_KEY}, a well-known demo value)")
    p.add_argument(
        "--step-seconds", type=_step_seconds, default=_env("STEP_SECONDS", "2"),
        help="duration of each lifecycle step (default 2)",
    )
    p.add_argument("--cu-capacity", type=_cu_capacity, default=_env("CU_CAPACITY", "64"),
                   help="compute units (CU) the systems may use together; a create or start beyond it fails "
                        "(default 64)")
    p.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="METHOD:CODE:COUNT",
        help="fail the first COUNT calls of METHOD (or *) with CODE, e.g. GetSystem:UNAVAILABLE:2; "
             "repeatable (default none)",
    )
    p.add_argument(
        "--latency", type=_latency, action="append", default=[], metavar="METHOD:SECONDS",
        help="delay every call of METHOD (or *) by SECONDS; repeatable (default none)",
    )
    p.add_argument("--tls-cert", metavar="PEM_FILE", help="serve TLS with this certificate chain (with --tls-key)")
    p.add_argument("--tls-key", metavar="PEM_FILE", help="private key of --tls-cert")
    p.add_argument(
        "--h2o3", choices=H2O3_MODES, default=os.environ.get("PUDDLE_EMULATOR_H2O3"),
        help="real: one real H2O-3 node (Java + the h2o package's jar) per started H2O-3 system; simulated: "
             "H2O-3 systems are rows like DAI ones (default: real when Java 8-17 and h2o are found)",
    )
    p.add_argument(
        "--h2o3-max-nodes", type=_max_nodes, default=_env("H2O3_MAX_NODES", str(default_max_nodes())),
        help="most real H2O-3 nodes at once; a create or start past it is refused "
             f"(default {default_max_nodes()}: half this machine's memory at {NODE_MEMORY_MB} MB a node)",
    )
    p.add_argument(
        "--log-level", type=_checked(_log_level), default=_env("LOG_LEVEL", "INFO"), help="logging level (default INFO)"
    )
    return p


def _read_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[bytes, bytes] | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if not args.tls_cert:
        return None
    pems = []
    for flag, name in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        try:
            pems.append(Path(name).read_bytes())
        except OSError as err:
            parser.error(f"argument {flag}: cannot read {name} ({err.strerror})")
    return pems[0], pems[1]


def _h2o3_mode(args: argparse.Namespace) -> str:
    """``--h2o3`` as given; when not given, real if this machine can run nodes, else simulated (said in one line)."""
    if args.h2o3 is not None:
        return str(args.h2o3)
    try:
        find_runtime()
    except RuntimeMissing as err:
        log.warning("H2O-3 systems are simulated: %s", err)
        return "simulated"
    return "real"


def _server(parser: argparse.ArgumentParser, args: argparse.Namespace, faults: FaultRegistry) -> EmulatorServer:
    """The server, started; a bad setting or database is the parser's one-line error naming the flag."""
    args.h2o3 = _h2o3_mode(args)
    try:
        server = EmulatorServer(
            host=args.host, port=args.port, db_path=args.db, api_key_id=args.api_key_id,
            api_secret_key=args.api_secret_key, step_seconds=args.step_seconds,
            cu_capacity=args.cu_capacity, faults=faults, tls=_read_tls(parser, args),
            h2o3=args.h2o3, h2o3_max_nodes=args.h2o3_max_nodes,
        )
    except EmulatorConfigError as err:
        parser.error(f"argument {_FLAGS.get(err.argument, err.argument)}: {err.rule}")
    try:
        server.start()
    except EmulatorConfigError as err:
        server.stop(grace=0)
        parser.error(f"argument --host/--port: {err.rule}")
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; returns the exit code (2 for a bad flag or file)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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

    server = _server(parser, args, faults)
    log.info(
        "db=%s step_seconds=%g cu_capacity=%d faults=%d latency rules=%d h2o3=%s",
        args.db, args.step_seconds, args.cu_capacity, len(args.fault), len(args.latency), args.h2o3,
    )
    if args.host not in _LOOPBACK:
        log.warning("listening on %s: the EmulatorAdminService needs no token; keep it off shared networks",
                    args.host)
    print(f"puddle-emulator listening on {server.address}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop(grace=1.0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
