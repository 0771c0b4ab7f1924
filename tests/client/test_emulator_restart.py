"""A client wait that spans a restart of the emulator process, mid-transition, on the same port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, AsyncAuthorizer, AsyncSystemsClient, Authorizer, RetryPolicy, SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

PATIENT = RetryPolicy(max_attempts=30, initial_backoff_s=0.05, max_backoff_s=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(db: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_puddle.emulator", "--port", str(port), "--db", str(db),
         "--step-seconds", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    assert "listening on" in proc.stdout.readline()
    return proc


@pytest.mark.parametrize("flavour_", ["sync", "async"])
def test_wait_survives_an_emulator_restart(tmp_path: Path, flavour_: str, wrap: Any) -> None:
    db, port = tmp_path / "state.sqlite", free_port()
    address = f"http://127.0.0.1:{port}"
    first = start_emulator(db, port)
    if flavour_ == "sync":
        systems: Any = SystemsClient(CLOUD_AWS, authorizer=Authorizer(
            address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, retry_policy=PATIENT))
    else:
        systems = wrap(AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(
            address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, retry_policy=PATIENT)))
    system = systems.create("survivor", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                            tags=[TagData("Team", "ml")])
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    # Bring it back shortly, while the client is already polling into the outage.
    procs: list[subprocess.Popen[str]] = []
    restart = threading.Timer(0.5, lambda: procs.append(start_emulator(db, port)))
    restart.start()
    try:
        started = systems.wait_for_system_started(system.id, poll_interval_s=0.2, timeout_s=30)
        assert started.status == System.SYSTEM_STATUS_STARTED.code
        assert started.id == system.id and started.default_url
    finally:
        restart.join()
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)


@pytest.fixture
def flavour() -> str:  # the shared `wrap` fixture needs a flavour; this test parametrizes its own
    return "async"
