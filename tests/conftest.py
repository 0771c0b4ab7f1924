"""Shared fixtures: a real emulator on loopback, clients on it, and an admin stub."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A fresh Airflow home for the whole session, set before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="puddle-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
DAGS_FOLDER = Path(_AIRFLOW_HOME) / "dags"
DAGS_FOLDER.mkdir()
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

from airflow_puddle.client import (  # noqa: E402
    CLOUD_AWS,
    AsyncAuthorizer,
    AsyncSystemsClient,
    Authorizer,
    RetryPolicy,
    SystemsClient,
)
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY  # noqa: E402
from airflow_puddle.emulator.server import EmulatorServer  # noqa: E402
from reliability.emulator import EmulatorAdmin as Admin  # noqa: E402
from reliability.emulator import connection_json  # noqa: E402

STEP_SECONDS = 0.1
FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """A fresh emulator on an ephemeral loopback port, with its own SQLite file."""
    server = EmulatorServer(
        port=0,
        db_path=str(tmp_path / "puddle.sqlite"),
        api_key_id=DEFAULT_API_KEY_ID,
        api_secret_key=DEFAULT_API_SECRET_KEY,
        step_seconds=STEP_SECONDS,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin(emulator: EmulatorServer) -> Iterator[Admin]:
    client = Admin(emulator.address)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits poll every 50 ms and give up after 30 s, on both twins."""
    for cls in (SystemsClient, AsyncSystemsClient):
        monkeypatch.setattr(cls, "POLL_INTERVAL_S", 0.05)
        monkeypatch.setattr(cls, "POLL_TIMEOUT_MINUTES", 0.5)


class _LoopThread:
    """One event loop on a thread, so sync tests can drive async clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class Blocking:
    """Wraps an async client so its coroutine methods can be called like the sync twin's."""

    def __init__(self, client: Any, loop: _LoopThread) -> None:
        self._client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **kw: self._loop.run(attr(*a, **kw))
        return attr


@pytest.fixture
def loop_thread() -> Iterator[_LoopThread]:
    lt = _LoopThread()
    yield lt
    lt.close()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_systems(emulator: EmulatorServer, flavour: str, loop_thread: _LoopThread) -> Any:
    """Factory: a SystemsClient (or the async twin behind a blocking wrapper) on the emulator."""

    def make(secret: str = DEFAULT_API_SECRET_KEY, retry: RetryPolicy = FAST_RETRY) -> Any:
        if flavour == "sync":
            auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, secret, retry_policy=retry)
            return SystemsClient(CLOUD_AWS, authorizer=auth)
        aauth = AsyncAuthorizer(emulator.address, DEFAULT_API_KEY_ID, secret, retry_policy=retry)
        return Blocking(AsyncSystemsClient(CLOUD_AWS, authorizer=aauth), loop_thread)

    return make


@pytest.fixture
def systems(make_systems: Any) -> Any:
    return make_systems()


@pytest.fixture
def wrap(flavour: str, loop_thread: _LoopThread) -> Any:
    """Turn an async client into a blocking one (identity for sync clients)."""
    return (lambda c: c) if flavour == "sync" else (lambda c: Blocking(c, loop_thread))


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the session's Airflow metadata DB once (SQLite in the temporary AIRFLOW_HOME)."""
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture
def puddle_conn(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``puddle_default`` pointing at the test's emulator, as an env var the worker and triggerer read."""
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address))
    return "puddle_default"


def load_dag(source: str, file_name: str) -> Any:
    """Write a DAG file into the session's dags folder and import it; returns its only DAG.

    ``dag.test()`` syncs the dags folder to the metadata DB, so a DAG under test
    must live there as a file, as it would in a deployment.
    """
    import importlib.util

    from airflow.sdk import DAG

    path = DAGS_FOLDER / file_name
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    assert len(dags) == 1, f"{file_name} defines {len(dags)} DAGs"
    return dags[0]
