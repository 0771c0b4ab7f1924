"""Bad constructor arguments and bad admin values are refused, naming the argument or field, and change
nothing; a database deleted under a running emulator is noticed and said. Real gRPC on loopback."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airflow_puddle._proto.puddle.v2 import (
    admin_service_pb2,
    auth_service_pb2,
    auth_service_pb2_grpc,
    system_service_pb2,
)
from airflow_puddle.emulator import EmulatorServer, PuddleBackend
from airflow_puddle.emulator.limits import MAX_ADVANCE_SECONDS, EmulatorConfigError

from .conftest import API_KEY_ID, API_SECRET_KEY

_GOOD_BACKEND: dict[str, Any] = {"api_key_id": "k", "api_secret_key": "s", "step_seconds": 1.0}


def _corrupt(tmp: Path) -> str:
    db = tmp / "corrupt.sqlite"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    return str(db)


def _read_only(tmp: Path) -> str:
    db = tmp / "ro.sqlite"
    PuddleBackend(str(db), **_GOOD_BACKEND).close()
    db.chmod(0o444)
    return str(db)


# (id, class, overrides of good arguments, the argument named); a callable value gets tmp_path.
BAD_ARGUMENTS: list[tuple[str, type, dict[str, Any], str]] = [
    ("server-port-high", EmulatorServer, {"port": 70000}, "port"),
    ("server-port-negative", EmulatorServer, {"port": -1}, "port"),
    ("server-port-bool", EmulatorServer, {"port": True}, "port"),
    ("server-port-text", EmulatorServer, {"port": "50051"}, "port"),
    ("server-host-empty", EmulatorServer, {"host": ""}, "host"),
    ("server-host-with-port", EmulatorServer, {"host": "127.0.0.1:80"}, "host"),
    ("server-runners-0", EmulatorServer, {"runners": 0}, "runners"),
    ("server-runners-huge", EmulatorServer, {"runners": 65}, "runners"),
    ("server-tls-half", EmulatorServer, {"tls": (b"cert",)}, "tls"),
    ("server-step-nan", EmulatorServer, {"step_seconds": math.nan}, "step_seconds"),
    ("server-secret-empty", EmulatorServer, {"api_secret_key": ""}, "api_secret_key"),
    ("server-db-missing-dir", EmulatorServer, {"db_path": lambda t: str(t / "nope" / "x.sqlite")}, "db_path"),
    ("backend-step-0", PuddleBackend, {"step_seconds": 0}, "step_seconds"),
    ("backend-step-inf", PuddleBackend, {"step_seconds": math.inf}, "step_seconds"),
    ("backend-step-negative", PuddleBackend, {"step_seconds": -1}, "step_seconds"),
    ("backend-step-bool", PuddleBackend, {"step_seconds": True}, "step_seconds"),
    ("backend-step-text", PuddleBackend, {"step_seconds": "2"}, "step_seconds"),
    ("backend-step-1e308", PuddleBackend, {"step_seconds": 1e308}, "step_seconds"),
    ("backend-ttl-huge", PuddleBackend, {"token_ttl_seconds": 10**400}, "token_ttl_seconds"),
    ("server-tls-not-a-cert", EmulatorServer, {"tls": (b"not a cert", b"not a key")}, "tls_cert"),
    ("backend-key-empty", PuddleBackend, {"api_key_id": ""}, "api_key_id"),
    ("backend-secret-none", PuddleBackend, {"api_secret_key": None}, "api_secret_key"),
    ("backend-cu-negative", PuddleBackend, {"cu_capacity": -1}, "cu_capacity"),
    ("backend-cu-float", PuddleBackend, {"cu_capacity": 1.5}, "cu_capacity"),
    ("backend-ttl-0", PuddleBackend, {"token_ttl_seconds": 0}, "token_ttl_seconds"),
    ("backend-user-empty", PuddleBackend, {"user_name": ""}, "user_name"),
    ("backend-db-empty", PuddleBackend, {"db_path": ""}, "db_path"),
    ("backend-db-corrupt", PuddleBackend, {"db_path": _corrupt}, "db_path"),
    ("backend-db-read-only", PuddleBackend, {"db_path": _read_only}, "db_path"),
    ("backend-db-directory", PuddleBackend, {"db_path": str}, "db_path"),
]


@pytest.mark.parametrize(("cls", "overrides", "argument"), [row[1:] for row in BAD_ARGUMENTS],
                         ids=[row[0] for row in BAD_ARGUMENTS])
def test_bad_constructor_argument(tmp_path: Path, cls: type, overrides: dict[str, Any], argument: str) -> None:
    kwargs = {**_GOOD_BACKEND, "db_path": str(tmp_path / "good.sqlite")}
    kwargs.update({k: v(tmp_path) if callable(v) else v for k, v in overrides.items()})
    db_path = kwargs.pop("db_path")
    with pytest.raises(ValueError, match=rf"^{argument}: ") as err:
        cls(db_path, **kwargs) if cls is PuddleBackend else cls(db_path=db_path, **kwargs)
    assert isinstance(err.value, EmulatorConfigError)
    assert err.value.argument == argument
    assert "\n" not in str(err.value)


def test_a_stored_non_finite_clock_offset_is_refused_at_start(tmp_path: Path) -> None:
    """A database bricked by an older emulator's AdvanceClock(nan) says so instead of serving NaN times."""
    db = str(tmp_path / "bricked.sqlite")
    with PuddleBackend(db, **_GOOD_BACKEND) as backend, backend.store.transaction():
        backend.store.set_meta("clock_offset", "nan")
    with pytest.raises(EmulatorConfigError, match="clock offset is 'nan'"):
        PuddleBackend(db, **_GOOD_BACKEND)


def _advance(seconds: float) -> tuple[str, admin_service_pb2.AdvanceClockRequest]:
    return "AdvanceClock", admin_service_pb2.AdvanceClockRequest(seconds=seconds)


def _latency(seconds: float, method: str = "ListSystems") -> tuple[str, admin_service_pb2.SetLatencyRequest]:
    return "SetLatency", admin_service_pb2.SetLatencyRequest(method=method, seconds=seconds)


def _fault(method: str = "ListSystems", code: str = "UNAVAILABLE", count: int = 1,
           message: str = "") -> tuple[str, admin_service_pb2.InjectFaultRequest]:
    return "InjectFault", admin_service_pb2.InjectFaultRequest(method=method, code=code, count=count, message=message)


# (id, (RPC, request), the field the error names)
BAD_ADMIN_VALUES: list[tuple[str, tuple[str, Any], str]] = [
    ("advance-nan", _advance(math.nan), "seconds"),
    ("advance-inf", _advance(math.inf), "seconds"),
    ("advance-minus-inf", _advance(-math.inf), "seconds"),
    ("advance-negative", _advance(-1), "seconds"),
    ("advance-over-10-years", _advance(MAX_ADVANCE_SECONDS + 1), "seconds"),
    ("advance-1e300", _advance(1e300), "seconds"),
    ("latency-nan", _latency(math.nan), "seconds"),
    ("latency-inf", _latency(math.inf), "seconds"),
    ("latency-negative", _latency(-0.5), "seconds"),
    ("latency-absurd", _latency(86400), "seconds"),
    ("latency-unknown-method", _latency(1, method="GetSytem"), "method"),
    ("latency-no-method", _latency(1, method=""), "method"),
    ("fault-unknown-code", _fault(code="NOPE"), "code"),
    ("fault-code-ok", _fault(code="OK"), "code"),
    ("fault-count-0", _fault(count=0), "count"),
    ("fault-count-negative", _fault(count=-5), "count"),
    ("fault-count-absurd", _fault(count=2_000_000_000), "count"),
    ("fault-unknown-method", _fault(method="GetSytem"), "method"),
    ("fault-admin-method", _fault(method="AdvanceClock"), "method"),
    ("fault-message-huge", _fault(message="x" * 100_000), "message"),
]


@pytest.mark.parametrize(("call", "field"), [row[1:] for row in BAD_ADMIN_VALUES],
                         ids=[row[0] for row in BAD_ADMIN_VALUES])
def test_bad_admin_value_is_refused_and_changes_nothing(
    server: EmulatorServer, admin_stub, system_stub, md, call: tuple[str, Any], field: str
) -> None:
    rpc, request = call
    with pytest.raises(grpc.RpcError) as err:
        getattr(admin_stub, rpc)(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(f"{field}: "), err.value.details()

    # Nothing stored or applied: the clock did not move, no rule is in force, and calls still work.
    assert server.backend.store.meta("clock_offset") is None
    assert abs(server.backend.now() - time.time()) < 5
    assert server.faults.latency("ListSystems") == 0
    started = time.monotonic()
    system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md, timeout=10)
    assert time.monotonic() - started < 2
    with grpc.insecure_channel(server.address.removeprefix("http://")) as fresh:
        login = auth_service_pb2_grpc.AuthServiceStub(fresh).Login(
            auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY)
        )
    assert login.token


def test_advance_clock_takes_ten_years_at_once(server: EmulatorServer, admin_stub) -> None:
    before = server.backend.now()
    admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=MAX_ADVANCE_SECONDS))
    assert server.backend.now() - before == pytest.approx(MAX_ADVANCE_SECONDS, abs=5)


def _status(code_call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        code_call()
    return err.value.code(), err.value.details() or ""


@pytest.mark.parametrize("how", ["deleted", "replaced", "overwritten"])
def test_a_database_deleted_under_the_emulator_is_noticed_and_said(
    server: EmulatorServer, channel: grpc.Channel, admin_stub, system_stub, md, caplog: pytest.LogCaptureFixture,
    how: str, tmp_path: Path,
) -> None:
    db = server.backend.store.watch.path
    if how == "overwritten":  # cp another emulator's database over it: the same inode, other bytes
        with EmulatorServer(db_path=str(tmp_path / "other.sqlite"), api_key_id=API_KEY_ID,
                            api_secret_key=API_SECRET_KEY):
            pass
        shutil.copyfile(tmp_path / "other.sqlite", db)
    else:
        for sidecar in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            sidecar.unlink(missing_ok=True)
    if how == "replaced":
        db.write_bytes(b"")
    caplog.set_level(logging.ERROR, logger="airflow_puddle.emulator")

    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    calls = [
        lambda: auth.Login(auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY)),
        lambda: system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md),
        lambda: admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=1)),
    ]
    for call in calls:
        code, details = _status(call)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        said = "deleted" if how == "deleted" else "replaced by another file"
        assert details == f"emulator database {db} was {said}; restart the emulator"

    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 5
    while health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "health still SERVING with the database gone"
        time.sleep(0.1)
    said = [r for r in caplog.records if str(db) in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
