"""``puddle-emulator`` as a user runs it: every bad flag or file is one line on stderr and exit code 2;
SIGTERM ends it at once even mid-latency; it serves IPv6 loopback. Real subprocesses, real gRPC."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    system_service_pb2,
    system_service_pb2_grpc,
)
from airflow_puddle.emulator import EmulatorServer
from tests.client.test_tls import self_signed

from .conftest import API_KEY_ID, API_SECRET_KEY, CliEmulator

Setup = Callable[[Path], list[str]]


def _flags(*args: str) -> Setup:
    return lambda tmp: list(args)


def _db(make: Callable[[Path], Path]) -> Setup:
    return lambda tmp: ["--db", str(make(tmp))]


def _missing_dir(tmp: Path) -> Path:
    return tmp / "no-such-dir" / "puddle.sqlite"


def _read_only_dir(tmp: Path) -> Path:
    d = tmp / "ro-dir"
    d.mkdir()
    d.chmod(0o555)
    return d / "puddle.sqlite"


def _read_only_file(tmp: Path) -> Path:
    db = tmp / "ro.sqlite"
    EmulatorServer(db_path=str(db)).stop()  # a good database, then made read-only
    db.chmod(0o444)
    return db


def _corrupt_file(tmp: Path) -> Path:
    db = tmp / "corrupt.sqlite"
    db.write_bytes(os.urandom(8192))
    return db


def _tls_files(cert: bytes | None, key: bytes | None) -> Setup:
    """--tls-cert and --tls-key files; None: a real self-signed certificate or its key."""
    def make(tmp: Path) -> list[str]:
        good_cert, good_key = self_signed("cli-tls")
        (tmp / "cert.pem").write_bytes(good_cert if cert is None else cert)
        (tmp / "key.pem").write_bytes(good_key if key is None else key)
        return ["--tls-cert", str(tmp / "cert.pem"), "--tls-key", str(tmp / "key.pem")]
    return make


def _directory(tmp: Path) -> Path:
    return tmp


def _port_in_use(tmp: Path) -> list[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    _LISTENERS.append(listener)
    return ["--port", str(listener.getsockname()[1])]


_LISTENERS: list[socket.socket] = []

# (id, flags, the flag the error names, words of the rule)
BAD_INVOCATIONS: list[tuple[str, Setup, str, str]] = [
    ("db-dir-missing", _db(_missing_dir), "--db", "does not exist"),
    ("db-dir-unwritable", _db(_read_only_dir), "--db", "is not writable"),
    ("db-read-only", _db(_read_only_file), "--db", "is read-only (mode 0444)"),
    ("db-corrupt", _db(_corrupt_file), "--db", "file is not a database"),
    ("db-is-directory", _db(_directory), "--db", "is a directory"),
    ("db-empty", _flags("--db", ""), "--db", "must be a file path"),
    ("step-0", _flags("--step-seconds", "0"), "--step-seconds", "must be more than 0 seconds"),
    ("step-nan", _flags("--step-seconds", "nan"), "--step-seconds", "must be a finite number"),
    ("step-inf", _flags("--step-seconds", "inf"), "--step-seconds", "must be a finite number"),
    ("step-negative", _flags("--step-seconds", "-1"), "--step-seconds", "must be more than 0 seconds"),
    ("step-text", _flags("--step-seconds", "fast"), "--step-seconds", "must be a number"),
    ("secret-empty", _flags("--api-secret-key", ""), "--api-secret-key", "must not be empty"),
    ("key-id-empty", _flags("--api-key-id", " "), "--api-key-id", "must not be empty"),
    ("port-70000", _flags("--port", "70000"), "--port", "must be between 0 and 65535"),
    ("port-negative", _flags("--port", "-1"), "--port", "must be between 0 and 65535"),
    ("port-text", _flags("--port", "http"), "--port", "must be a whole number"),
    ("port-in-use", _port_in_use, "--host/--port", "Address already in use"),
    ("host-with-port", _flags("--host", "localhost:50051"), "--host", "not an IPv6 address"),
    ("cu-negative", _flags("--cu-capacity", "-1"), "--cu-capacity", "must be at least 0"),
    ("log-level", _flags("--log-level", "LOUD"), "--log-level", "must be one of"),
    ("fault-code", _flags("--fault", "GetSystem:NOPE"), "--fault", "unknown gRPC status code 'NOPE'"),
    ("fault-ok", _flags("--fault", "GetSystem:OK"), "--fault", "must be a failing status code"),
    ("fault-method", _flags("--fault", "GetSytem:UNAVAILABLE"), "--fault", "is not a Puddle RPC"),
    ("fault-count-0", _flags("--fault", "GetSystem:UNAVAILABLE:0"), "--fault", "COUNT must be between 1 and"),
    ("fault-count-huge", _flags("--fault", "*:UNAVAILABLE:99999999"), "--fault", "COUNT must be between 1 and"),
    ("fault-count-text", _flags("--fault", "GetSystem:UNAVAILABLE:1.5"), "--fault", "COUNT must be a whole number"),
    ("latency-nan", _flags("--latency", "GetSystem:nan"), "--latency", "must be a finite number"),
    ("latency-inf", _flags("--latency", "*:inf"), "--latency", "must be a finite number"),
    ("latency-negative", _flags("--latency", "GetSystem:-1"), "--latency", "must not be negative"),
    ("latency-absurd", _flags("--latency", "GetSystem:86400"), "--latency", "must be at most 600 seconds"),
    ("tls-missing", _flags("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"), "--tls-cert",
     "cannot read"),
    # hardening round 2: absurd step times, files that are not a certificate or its key
    ("step-1e308", _flags("--step-seconds", "1e308"), "--step-seconds", "must be at most 1 hours (3600 seconds)"),
    ("step-a-day", _flags("--step-seconds", "86400"), "--step-seconds", "must be at most 1 hours"),
    ("tls-cert-not-a-cert", _tls_files(b"hello, I am not a certificate\n", None), "--tls-cert",
     "is not a PEM certificate chain"),
    ("tls-cert-garbage-pem", _tls_files(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None),
     "--tls-cert", "is not a PEM certificate chain"),
    ("tls-key-not-a-key", _tls_files(None, b"not a key\n"), "--tls-key", "is not a PEM private key"),
    ("tls-key-of-another-cert", _tls_files(None, self_signed("other")[1]), "--tls-key",
     "is not a PEM private key of the certificate"),
]


@pytest.fixture
def listeners() -> Iterator[None]:
    yield
    while _LISTENERS:
        _LISTENERS.pop().close()


def _run_cli(flags: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    default_db = ["--db", str(tmp / "default.sqlite")]
    return subprocess.run(
        [sys.executable, "-m", "airflow_puddle.emulator", "--port", "0", *default_db, *flags],
        capture_output=True, text=True, timeout=30, env={**os.environ, **env},
    )


@pytest.mark.parametrize(("setup", "flag", "rule"), [row[1:] for row in BAD_INVOCATIONS],
                         ids=[row[0] for row in BAD_INVOCATIONS])
@pytest.mark.usefixtures("listeners")
def test_bad_invocation_is_one_line_and_exit_2(tmp_path: Path, setup: Setup, flag: str, rule: str) -> None:
    flags = setup(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.sqlite") if p.is_file()}

    result = _run_cli(flags, tmp_path)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"puddle-emulator: error: argument {flag}: "), lines[0]
    assert rule in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "default.sqlite").exists() or flag == "--host/--port"  # nothing opened before checks
    assert {p: p.read_bytes() for p in before} == before  # nothing written to a refused database


def test_a_bad_environment_value_names_the_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_puddle.emulator", "--db", str(tmp_path / "x.sqlite")],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PUDDLE_EMULATOR_STEP_SECONDS": "nan"},
    )
    assert result.returncode == 2
    assert result.stderr == "puddle-emulator: error: argument --step-seconds: must be a finite number of seconds, " \
                            "got nan\n"


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding a good emulator database, remounted read-only (root with mount rights only)."""
    mount = tmp_path / "ro-mount"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs (as non-root, chmod rows cover read-only files)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode().strip()}")
    try:
        EmulatorServer(db_path=str(mount / "puddle.sqlite")).stop()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
        yield mount / "puddle.sqlite"
    finally:
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)


def test_a_database_on_a_read_only_file_system_is_refused_at_start(read_only_mount: Path, tmp_path: Path) -> None:
    """A genuinely read-only location (root cannot write it either) fails at start, not at the first login."""
    result = _run_cli(["--db", str(read_only_mount)], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"puddle-emulator: error: argument --db: directory {read_only_mount.parent} is on a read-only file system"
    ]


def _login(address: str) -> tuple[grpc.Channel, tuple[tuple[str, str], ...]]:
    channel = grpc.insecure_channel(address)
    token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
        auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY), timeout=10
    ).token
    return channel, (("x-puddle-token", token),)


def test_sigterm_ends_the_emulator_while_handlers_sleep_in_latency(run_emulator: Callable[..., CliEmulator]) -> None:
    emulator = run_emulator("--latency", "ListSystems:600")
    channel, md = _login(emulator.address())
    with channel:
        stub = system_service_pb2_grpc.SystemServiceStub(channel)
        calls = [stub.ListSystems.future(system_service_pb2.ListSystemsRequest(), metadata=md) for _ in range(4)]
        time.sleep(0.5)  # every call is now asleep in its injected 600 s
        started = time.monotonic()
        assert emulator.terminate(timeout=10) == 0
        took = time.monotonic() - started
        codes = set()
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call.result(timeout=5)
            codes.add(err.value.code())
    assert took < 3, f"SIGTERM took {took:.1f}s"
    assert codes == {grpc.StatusCode.UNAVAILABLE}
    assert "Traceback" not in emulator.stderr


def _ipv6_loopback() -> str | None:
    """Why this machine cannot bind ::1, or None when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as err:
        return f"no IPv6 loopback on this machine (bind ::1: {err.strerror})"
    return None


@pytest.mark.skipif(_ipv6_loopback() is not None, reason=str(_ipv6_loopback()))
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_serves_ipv6_loopback(run_emulator: Callable[..., CliEmulator], host: str) -> None:
    emulator = run_emulator("--host", host)
    address = emulator.address()
    assert address.startswith("[::1]:"), address
    channel, md = _login(address)
    with channel:
        stub = system_service_pb2_grpc.SystemServiceStub(channel)
        assert list(stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md, timeout=10).systems) == []
    assert emulator.terminate() == 0
    assert "keep it off shared networks" not in emulator.stderr  # ::1 is loopback
