"""Shared fixtures: a real emulator on loopback, clients on it, an admin stub, and the client choice.

A test module marked ``both_clients`` runs each test that asks for ``puddle_conn`` (or
``puddle_client``) twice: with ``extra.client=builtin`` and with ``extra.client=puddle`` over the
stand-in ``puddle.client`` (``tests/official/standin``, put on ``sys.path`` for that test only).
``--puddle-client=builtin`` or ``=puddle`` runs one of the two.
"""

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
# Emulators a test spawns simulate H2O-3 unless the test asks for real nodes (--h2o3 real).
os.environ["PUDDLE_EMULATOR_H2O3"] = "simulated"

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
from airflow_puddle.emulator.testing import EmulatorAdmin as Admin  # noqa: E402
from airflow_puddle.emulator.testing import connection_json  # noqa: E402

STEP_SECONDS = 0.1
STANDIN = Path(__file__).resolve().parent / "official" / "standin"
"""The stand-in ``puddle.client`` package's folder (tests/official/standin_build.py builds it)."""
CLIENT_CHOICES = ("builtin", "puddle")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--puddle-client", choices=(*CLIENT_CHOICES, "both"), default="both",
                     help="extra.client for tests marked both_clients: builtin, puddle (the stand-in) or both")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_clients: run with extra.client=builtin and extra.client=puddle")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "puddle_client" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_clients"):
        chosen = metafunc.config.getoption("--puddle-client")
        metafunc.parametrize("puddle_client", CLIENT_CHOICES if chosen == "both" else (chosen,), indirect=True)


def forget_standin() -> None:
    """Drop the stand-in from ``sys.modules``, so ``import puddle.client`` fails again without it on the path."""
    import sys

    for name in [m for m in sys.modules if m == "puddle" or m.startswith("puddle.")]:
        del sys.modules[name]


@pytest.fixture
def puddle_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``extra.client`` for this test; with ``puddle``, the stand-in is importable as ``puddle.client``."""
    choice = str(getattr(request, "param", "builtin"))
    if choice == "puddle":
        monkeypatch.syspath_prepend(str(STANDIN))
    yield choice
    if choice == "puddle":
        forget_standin()
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
def client(emulator: EmulatorServer) -> Iterator[SystemsClient]:
    """A sync client of our own on the test's emulator, to set up and look at its systems from outside Airflow."""
    auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    yield SystemsClient(CLOUD_AWS, authorizer=auth)
    auth.close()


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


def client_extra(choice: str) -> dict[str, str]:
    """The extra that picks ``choice`` (nothing for the default, builtin)."""
    return {} if choice == "builtin" else {"client": choice}


@pytest.fixture
def puddle_conn(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, puddle_client: str) -> str:
    """``puddle_default`` pointing at the test's emulator, as an env var the worker and triggerer read."""
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, **client_extra(puddle_client)))
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
