"""Fixtures for the emulator tests: a fake clock, a backend on it, and a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import (
    admin_service_pb2_grpc,
    auth_service_pb2,
    auth_service_pb2_grpc,
    system_service_pb2_grpc,
)
from airflow_puddle.emulator import EmulatorServer, PuddleBackend
from airflow_puddle.emulator.rows import User

API_KEY_ID = "test-key-id"
API_SECRET_KEY = "test-secret-key"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_backend(tmp_path: Path, clock: FakeClock) -> Iterator:
    """Open backends on the fake clock (step 1 s); all closed at the end."""
    opened: list[PuddleBackend] = []

    def make(db: str | None = None, **kwargs: object) -> PuddleBackend:
        options: dict = {
            "step_seconds": 1.0, "api_key_id": API_KEY_ID, "api_secret_key": API_SECRET_KEY, "clock": clock,
        }
        options.update(kwargs)
        backend = PuddleBackend(db or str(tmp_path / "state.sqlite"), **options)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()  # closing twice is harmless


@pytest.fixture
def backend(make_backend) -> PuddleBackend:
    return make_backend()


@pytest.fixture
def user(backend: PuddleBackend) -> User:
    return backend.login(API_KEY_ID, API_SECRET_KEY).user


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(
        db_path=str(tmp_path / "server.sqlite"), api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY,
        step_seconds=0.2,
    )
    srv.start()
    yield srv
    srv.stop(grace=0)


@pytest.fixture
def channel(server: EmulatorServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address.removeprefix("http://")) as ch:
        yield ch


@pytest.fixture
def token(channel: grpc.Channel) -> str:
    stub = auth_service_pb2_grpc.AuthServiceStub(channel)
    return stub.Login(auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY)).token


@pytest.fixture
def md(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the token."""
    return (("x-puddle-token", token),)


@pytest.fixture
def system_stub(channel: grpc.Channel) -> system_service_pb2_grpc.SystemServiceStub:
    return system_service_pb2_grpc.SystemServiceStub(channel)


@pytest.fixture
def admin_stub(channel: grpc.Channel) -> admin_service_pb2_grpc.EmulatorAdminServiceStub:
    return admin_service_pb2_grpc.EmulatorAdminServiceStub(channel)
