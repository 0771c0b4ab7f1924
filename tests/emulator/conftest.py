"""Fixtures for the emulator tests: a fake clock, a backend on it, a live server, and the CLI as a process."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
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


class CliEmulator:
    """``python -m airflow_puddle.emulator`` as a subprocess, with its stdout read on a thread."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_puddle.emulator", "--port", "0", "--db", str(db),
             "--api-key-id", API_KEY_ID, "--api-secret-key", API_SECRET_KEY, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def address(self, timeout: float = 15.0) -> str:
        """``HOST:PORT`` from the emulator's one stdout line (``[::1]:PORT`` for IPv6), as gRPC dials it."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"the emulator printed no address; stderr:\n{err}") from None
        prefix = "puddle-emulator listening on http://"
        assert line.startswith(prefix), line
        return line.strip().removeprefix(prefix)

    def terminate(self, timeout: float = 15.0) -> int:
        """Send SIGTERM; the exit code once it exited (its stderr is then in :attr:`stderr`)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return code


@pytest.fixture
def run_emulator(tmp_path: Path) -> Iterator[Callable[..., CliEmulator]]:
    """Factory: start the CLI emulator on ``tmp_path/cli.sqlite`` with extra flags; killed at the end if still up."""
    started: list[CliEmulator] = []

    def run(*extra: str) -> CliEmulator:
        emulator = CliEmulator(tmp_path / "cli.sqlite", *extra)
        started.append(emulator)
        return emulator

    yield run
    for emulator in started:
        if emulator.proc.poll() is None:
            emulator.proc.kill()
            emulator.proc.wait()
