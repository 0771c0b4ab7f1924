"""End to end under a real ``airflow standalone``: scheduler, dag-processor, triggerer, api-server.

One module-scoped Airflow runs in its own temporary ``AIRFLOW_HOME`` (not the session
one from ``tests/conftest.py``: its environment is built explicitly) against two
in-process emulators on loopback. ``puddle_default`` moves systems in 1 s steps;
``puddle_slow`` in slow steps, so a create stays deferred long enough to be killed;
``puddle_official`` is the fast emulator through ``extra.client=puddle`` over the stand-in
``puddle.client`` (on the standalone's ``PYTHONPATH``). The connections are env vars of the
standalone, so its workers and its triggerer see them. The DAG files are written before
Airflow starts, so the first parse finds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from cryptography.fernet import Fernet

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from tests.conftest import STANDIN, connection_json

pytestmark = pytest.mark.e2e

T = TypeVar("T")

FAST_STEP_S = 1.0  # create: 3 steps to Started; terminate: 1 step
SLOW_STEP_S = 6.0  # create stays Initializing 18 s; the kill's Failing and Terminating steps take 6 s each
STARTUP_TIMEOUT_S = 150.0
RUN_TIMEOUT_S = 180.0
KILL_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0

PIPELINE_DAG_ID = "puddle_e2e_pipeline"
KILL_DAG_ID = "puddle_e2e_kill"
KILL_SYSTEM_NAME = "e2e-kill"

TERMINATED = System.SYSTEM_STATUS_TERMINATED.code
TERMINATING = System.SYSTEM_STATUS_TERMINATING.code
INITIALIZING = System.SYSTEM_STATUS_INITIALIZING.code
FAILED = System.SYSTEM_STATUS_FAILED.code

_DAG_HEADER = '''
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_puddle.operators.puddle import PuddleCreateSystemOperator, PuddleTerminateSystemOperator

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": {"Team": "ml"}}
'''

PIPELINE_DAG = _DAG_HEADER + f'''
with DAG(
    dag_id="{PIPELINE_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # apache/airflow#72716 and #71580: the scheduler may fail a deferred task that has just resumed,
    # on the stale executor event of its deferral; the operators are idempotent, so a retry recovers.
    default_args={{"retries": 2, "retry_delay": timedelta(seconds=2)}},
):
    create = PuddleCreateSystemOperator(
        task_id="create", name="e2e-pipeline", deferrable=True, terminate_on_failure=True, poll_interval=1, **DAI,
    )

    @task
    def use(ti=None):
        system_id = ti.xcom_pull(task_ids="create")["id"]
        if not system_id:
            raise ValueError("create pushed no system id")
        return system_id

    terminate = PuddleTerminateSystemOperator(
        task_id="terminate", system_id="{{{{ ti.xcom_pull(task_ids='create')['id'] }}}}", deferrable=True,
        poll_interval=1,
    )
    create >> use() >> terminate.as_teardown(setups=create)
'''

KILL_DAG = _DAG_HEADER + f'''
with DAG(
    dag_id="{KILL_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # No retries: a retry would adopt the system by name (not own it), and this DAG is about the first try.
    default_args={{"retries": 0}},
):
    PuddleCreateSystemOperator(
        task_id="create", name="{KILL_SYSTEM_NAME}", puddle_conn_id="puddle_slow", deferrable=True,
        terminate_on_failure=True, poll_interval=1, **DAI,
    )
'''

OFFICIAL_DAG_ID = "puddle_e2e_official"
OFFICIAL_DAG = _DAG_HEADER + f'''
with DAG(
    dag_id="{OFFICIAL_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"retries": 2, "retry_delay": timedelta(seconds=2)}},  # as the pipeline DAG, for #72716
):
    create = PuddleCreateSystemOperator(
        task_id="create", name="e2e-official", puddle_conn_id="puddle_official", deferrable=True, poll_interval=1,
        **DAI,
    )
    terminate = PuddleTerminateSystemOperator(
        task_id="terminate", system_name="e2e-official", puddle_conn_id="puddle_official", deferrable=True,
        poll_interval=1,
    )
    create >> terminate
'''

SHARED_DAG_ID = "puddle_e2e_shared"
SHARED_WAITS = 6
SHARED_DAG = _DAG_HEADER + f'''
with DAG(
    dag_id="{SHARED_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"retries": 2, "retry_delay": timedelta(seconds=2)}},  # apache/airflow#72716, as above
):
    for n in range({SHARED_WAITS}):
        PuddleCreateSystemOperator(
            task_id=f"create_{{n}}", name=f"e2e-shared-{{n}}", puddle_conn_id="puddle_slow", deferrable=True,
            poll_interval=1, **DAI,
        )
'''

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.25,
               diagnostics: Callable[[], str] = lambda: "") -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


@dataclass
class Airflow:
    """A running ``airflow standalone`` and the ways to talk to it."""

    home: Path
    api_url: str
    env: dict[str, str]
    fernet_key: str
    proc: subprocess.Popen[bytes]
    _token: str | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.home / "standalone.log"

    def _admin_password(self) -> str | None:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        try:
            return str(json.loads(path.read_text())["admin"])
        except (OSError, ValueError, KeyError):
            return None

    def token(self) -> str:
        if self._token is None:
            password = self._admin_password()
            assert password, "standalone wrote no admin password"
            status, body = self.request("POST", "/auth/token", {"username": "admin", "password": password},
                                        auth=False)
            assert status in (200, 201), f"POST /auth/token answered {status}"
            self._token = str(body["access_token"])
        return self._token

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        """One call to the api-server: (status, decoded JSON body, or text on errors)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api_url + path, data=data, method=method, headers=headers)
        try:
            with _NO_PROXY.open(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")[:2000]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} answered {status}: {payload}"
        return payload

    def cli(self, *args: str) -> str:
        airflow = str(Path(sys.executable).with_name("airflow"))
        done = subprocess.run([airflow, *args], env=self.env, cwd=self.home, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done.stdout

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A short read-only query on the standalone's SQLite metadata DB."""
        db = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=10)
        try:
            return list(db.execute(sql, params))
        finally:
            db.close()

    def decrypt(self, stored: str) -> str:
        """Trigger kwargs as stored: plain JSON (3.3.2, for a task's deferral) or a Fernet token."""
        if stored.startswith("{"):
            return stored
        return Fernet(self.fernet_key.encode()).decrypt(stored.encode()).decode()

    def trigger_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The events of a task's trigger logs (JSON lines), one a line."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        events = []
        for path in sorted(folder.glob("*.log.trigger.*.log")):
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    events.append(f"{record.get('timestamp')} {record.get('level')} {record.get('event')}")
                except ValueError:
                    events.append(line)
        return "\n".join(events)

    def diagnostics(self, dag_id: str | None = None, run_id: str | None = None, trigger_logs_of: str = "") -> str:
        """States, trigger logs and the end of the standalone's output, for failure messages (no secrets)."""
        lines = []
        if dag_id and run_id:
            with contextlib.suppress(Exception):
                states = {t: (ti["state"], ti["try_number"]) for t, ti in self.task_instances(dag_id, run_id).items()}
                lines.append(f"task states (state, try) of {dag_id}/{run_id}: {states}")
            if trigger_logs_of:
                log = self.trigger_log(dag_id, run_id, trigger_logs_of)
                lines += [f"--- trigger log of {trigger_logs_of} ---", log]
        lines.append(f"standalone exit code: {self.proc.poll()}")
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-80:]
            lines += ["--- standalone.log (tail) ---", *tail]
        text = "\n".join(lines)
        for secret in (self._admin_password(), self._token):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class Stack:
    airflow: Airflow
    fast: EmulatorServer
    slow: EmulatorServer


def _standalone_env(home: Path, api_port: int, fernet_key: str, fast: str, slow: str) -> dict[str, str]:
    """The standalone's environment, from scratch: none of this process's AIRFLOW* settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    loopback = "127.0.0.1,localhost,::1"
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # standalone runs `airflow ...`
        "NO_PROXY": loopback, "no_proxy": loopback,  # httpx (execution API) and gRPC must not use a proxy
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,  # known, so Airflow.decrypt can read what it encrypts
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # schedule=None: they run only when triggered
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # serve-logs binds every interface (hard-coded in 3.3); at least keep it off the default ports
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_CONN_PUDDLE_DEFAULT": connection_json(fast),
        "AIRFLOW_CONN_PUDDLE_SLOW": connection_json(slow),
        "AIRFLOW_CONN_PUDDLE_OFFICIAL": connection_json(fast, client="puddle"),
        # the stand-in puddle.client, and the project root it builds from (tests/official)
        "PYTHONPATH": os.pathsep.join(p for p in (str(STANDIN), str(STANDIN.parents[2]), env.get("PYTHONPATH"))
                                      if p),
    })
    return env


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def _ours(home: Path) -> list[psutil.Process]:
    """Every process of this user whose AIRFLOW_HOME is ``home`` (unique to this module's run)."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.pid != os.getpid() and p.environ().get("AIRFLOW_HOME") == str(home):
                found.append(p)
    return found


def _stop_standalone(proc: subprocess.Popen[bytes], home: Path) -> list[str]:
    """Stop standalone and everything under it; returns what had to be SIGKILLed.

    Standalone stops its components with SIGTERM on Ctrl-C, but a backgrounded one may
    ignore SIGINT, so the components get SIGTERM directly, the parent SIGINT. Task
    runners sit in their own process groups, so the whole tree is snapshotted first and
    anything left after the grace period is SIGKILLed, then the session's group, then
    any process still running with this AIRFLOW_HOME (one reparented away from the tree).
    """
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.ppid() == proc.pid:
                p.terminate()
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = []
    for p in _alive(tree):
        with contextlib.suppress(psutil.NoSuchProcess):
            killed.append(f"{p.pid} {' '.join(p.cmdline())[:80]}")
            p.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        killed.append(f"{proc.pid} airflow standalone")
        proc.kill()
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # a group id is not reused while the group has members
    for p in _alive(_ours(home)):
        with contextlib.suppress(psutil.NoSuchProcess):
            killed.append(f"{p.pid} {' '.join(p.cmdline())[:80]} (outside the tree)")
            p.kill()
    return killed


def _wait_ready(af: Airflow) -> None:
    """Until the api-server answers, every component heartbeats, and both DAGs are parsed."""

    def healthy() -> bool | None:
        if af.proc.poll() is not None:
            pytest.fail(f"airflow standalone exited early\n{af.diagnostics()}")
        try:
            status, body = af.request("GET", "/api/v2/monitor/health", auth=False)
        except OSError:
            return None
        if status != 200:
            return None
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return True if all((body.get(p) or {}).get("status") == "healthy" for p in parts) else None

    def parsed() -> bool | None:
        _, errors = af.request("GET", "/api/v2/importErrors")
        if isinstance(errors, dict) and errors.get("import_errors"):
            pytest.fail(f"DAG import errors: {json.dumps(errors['import_errors'], indent=1)[:3000]}")
        ok = all(af.request("GET", f"/api/v2/dags/{d}")[0] == 200 for d in (PIPELINE_DAG_ID, KILL_DAG_ID))
        return True if ok else None

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    wait_until("the api-server and healthy components", healthy, STARTUP_TIMEOUT_S, 0.5, af.diagnostics)
    wait_until("both DAGs parsed", parsed, max(5.0, deadline - time.monotonic()), 0.5, af.diagnostics)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="puddle-e2e-"))
    emulators: list[EmulatorServer] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        for name, step in (("fast", FAST_STEP_S), ("slow", SLOW_STEP_S)):
            emulator = EmulatorServer(port=0, db_path=str(home / f"puddle-{name}.sqlite"), step_seconds=step)
            emulator.start()
            emulators.append(emulator)
        fast, slow = emulators
        (home / "dags").mkdir()
        (home / "dags" / f"{PIPELINE_DAG_ID}.py").write_text(PIPELINE_DAG)
        (home / "dags" / f"{KILL_DAG_ID}.py").write_text(KILL_DAG)
        (home / "dags" / f"{SHARED_DAG_ID}.py").write_text(SHARED_DAG)
        (home / "dags" / f"{OFFICIAL_DAG_ID}.py").write_text(OFFICIAL_DAG)
        api_port = _free_port()
        fernet_key = Fernet.generate_key().decode()
        env = _standalone_env(home, api_port, fernet_key, fast.address, slow.address)
        with open(home / "standalone.log", "wb") as log:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("airflow")), "standalone"], cwd=home, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        af = Airflow(home=home, api_url=f"http://127.0.0.1:{api_port}", env=env, fernet_key=fernet_key, proc=proc)
        started = time.monotonic()
        _wait_ready(af)
        print(f"\nairflow standalone ready in {time.monotonic() - started:.0f}s")
        yield Stack(af, fast, slow)
    finally:
        try:
            if proc is not None:
                stopping = time.monotonic()
                killed = _stop_standalone(proc, home)
                print(f"\nairflow standalone stopped in {time.monotonic() - stopping:.0f}s")
                if killed:
                    print(f"SIGKILLed after {STOP_GRACE_S:.0f}s: {killed}")
        finally:
            for emulator in emulators:
                emulator.stop()
            if os.environ.get("PUDDLE_E2E_KEEP_HOME"):
                print(f"\nkept {home}")
            else:
                shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def client_for() -> Iterator[Callable[[EmulatorServer], SystemsClient]]:
    authorizers: list[Authorizer] = []

    def make(emulator: EmulatorServer) -> SystemsClient:
        auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
        authorizers.append(auth)
        return SystemsClient(CLOUD_AWS, authorizer=auth)

    yield make
    for auth in authorizers:
        auth.close()


def test_deferred_pipeline_through_scheduler_and_triggerer(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, PIPELINE_DAG_ID, "e2e_pipeline"
    af.cli("dags", "trigger", dag_id, "-r", run_id)  # DAGs start unpaused here (see _standalone_env)

    triggers: dict[int, tuple[str, str]] = {}  # every trigger row seen while the run went on

    def finished() -> dict[str, Any] | None:
        for trigger_id, classpath, kwargs in af.query("SELECT id, classpath, kwargs FROM trigger"):
            triggers.setdefault(trigger_id, (classpath, kwargs))
        run = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    started = time.monotonic()
    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    tis = af.task_instances(dag_id, run_id)
    tries = {task_id: ti["try_number"] for task_id, ti in tis.items()}
    print(f"\n{dag_id} ran in {time.monotonic() - started:.0f}s, tries {tries}")
    states = {task_id: ti["state"] for task_id, ti in tis.items()}
    assert states == {"create": "success", "use": "success", "terminate": "success"}, af.diagnostics(dag_id, run_id)
    assert run["state"] == "success"

    # The system the setup created is the one the teardown terminated.
    client = client_for(stack.fast)
    (system_id,) = [row[0] for row in af.query(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'use' AND key = 'return_value'",
        dag_id, run_id)]
    system_id = json.loads(system_id)
    system = client.get(system_id)
    assert system is not None and system.name == "e2e-pipeline"
    assert system.status == TERMINATED, system.status_text
    assert ("Team", "ml") in [(t.label, t.value) for t in system.tags]

    # Both waits ran in the triggerer: each deferring task has a trigger log.
    for task_id in ("create", "terminate"):
        logs = list((af.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log.trigger.*.log"))
        assert logs, f"no trigger log for {task_id}: its wait did not run in the triggerer"

    # What the trigger table held. On 3.3.2 a task's deferral stores the kwargs as plain JSON
    # (the Execution API encrypts only kwargs a client sends pre-encrypted), so they must hold
    # nothing secret: only what serialize() emits, the ids and the connection *id*.
    password = system.password
    assert password, "the emulator gave the system no DAI password to look for"
    ours = {i: row for i, row in triggers.items() if row[0].endswith("PuddleSystemStateTrigger")}
    assert ours, f"never caught a PuddleSystemStateTrigger row in the trigger table (saw {triggers})"
    expected_keys = set(PuddleSystemStateTrigger(system_id="x", target="started", deadline=0).serialize()[1])
    targets = {}
    for trigger_id, (_, stored) in ours.items():
        plain = af.decrypt(stored)
        for secret in (DEFAULT_API_SECRET_KEY, password):
            assert secret not in plain and secret not in stored, f"trigger {trigger_id} kwargs hold a secret"
        kwargs = json.loads(plain)
        assert set(kwargs) == expected_keys, f"trigger {trigger_id}: unexpected kwargs {sorted(kwargs)}"
        assert kwargs["system_id"] == system_id and kwargs["puddle_conn_id"] == "puddle_default"
        targets[kwargs["target"]] = kwargs["owns_system"]
    assert targets.get("started") is True, f"caught no create trigger owning its system: {targets}"

    # The event payloads (resumed as next_kwargs) and the XComs carry public fields only.
    stored_values = [str(v) for row in af.query(
        "SELECT next_kwargs FROM task_instance WHERE dag_id = ? AND run_id = ? UNION ALL "
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ?", dag_id, run_id, dag_id, run_id) for v in row]
    assert any(system_id in v for v in stored_values)
    assert not [v for v in stored_values if password in v or DEFAULT_API_SECRET_KEY in v]


def test_killing_a_deferred_create_terminates_the_system_it_created(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, KILL_DAG_ID, "e2e_kill"
    client = client_for(stack.slow)
    af.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})

    def deferred() -> dict[str, Any] | None:
        ti = af.task_instances(dag_id, run_id).get("create")
        if ti and ti["state"] in ("success", "failed", "upstream_failed", "skipped"):
            pytest.fail(f"create ended {ti['state']} before it could be killed\n{af.diagnostics(dag_id, run_id)}")
        return ti if ti and ti["state"] == "deferred" else None

    diagnostics = lambda: af.diagnostics(dag_id, run_id, trigger_logs_of="create")  # noqa: E731
    wait_until("create to be deferred", deferred, RUN_TIMEOUT_S, diagnostics=diagnostics)
    # on_kill reaches only a trigger already running in the triggerer: a task marked failed before
    # the triggerer picked its trigger up never runs it. The trigger's first log line says it runs.
    wait_until("the create's trigger to run in the triggerer",
               lambda: True if "Initializing" in af.trigger_log(dag_id, run_id, "create") else None, 30.0,
               diagnostics=diagnostics)
    system = client.find_by_name(KILL_SYSTEM_NAME)
    assert system is not None
    assert system.status == INITIALIZING, f"system already {system.status_text}: the kill would prove nothing"

    af.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/create", {"new_state": "failed"})
    killed = time.monotonic()

    failed_at: float | None = None

    def going() -> System | None:
        nonlocal failed_at
        current = client.get(system.id)
        assert current is not None
        if current.status in (TERMINATING, TERMINATED):
            return current
        # discard() marks it failed, polls (every 5 s) until it is Failed, then terminates it:
        # Failed for much longer means on_kill stopped half way. No use waiting the whole timeout.
        if current.status != FAILED:
            failed_at = None
        elif failed_at is None:
            failed_at = time.monotonic()
        elif time.monotonic() - failed_at > 15:
            pytest.fail(f"system {system.id} stayed Failed: on_kill marked it failed but never terminated it "
                        "(3.3.2 re-sends the user-action cancel every triggerer loop, ~1 s, which cancels a "
                        f"longer on_kill)\n{diagnostics()}")
        return None

    gone = wait_until("the killed create's system to be terminated", going, KILL_TIMEOUT_S, 0.5,
                      diagnostics=diagnostics)
    print(f"\nsystem {gone.status_text} {time.monotonic() - killed:.0f}s after the task was marked failed")
    assert af.task_instances(dag_id, run_id)["create"]["state"] == "failed"


def test_deferred_waits_in_a_real_triggerer_share_one_poll(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six deferred creates on one connection: the triggerer polls once per interval for all of them."""
    polls: list[float] = []  # ListSystems without a name filter: the shared poll (operators look up by name)
    gets: list[float] = []
    backend = stack.slow.backend
    list_systems, get_system = backend.list_systems, backend.get_system

    def counting_list(user: Any, cloud: str = "", name: str = "") -> Any:
        if not name:
            polls.append(time.monotonic())
        return list_systems(user, cloud, name)

    def counting_get(*args: Any, **kwargs: Any) -> Any:
        gets.append(time.monotonic())
        return get_system(*args, **kwargs)

    monkeypatch.setattr(backend, "list_systems", counting_list)
    monkeypatch.setattr(backend, "get_system", counting_get)
    af, dag_id, run_id = stack.airflow, SHARED_DAG_ID, "e2e_shared"
    af.cli("dags", "trigger", dag_id, "-r", run_id)

    deferred: list[tuple[float, int]] = []  # (when, how many of our tasks were deferred then)

    def finished() -> dict[str, Any] | None:
        tis = af.task_instances(dag_id, run_id)
        deferred.append((time.monotonic(), sum(ti["state"] == "deferred" for ti in tis.values())))
        run = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    assert run["state"] == "success", af.diagnostics(dag_id, run_id)
    together = [t for t, n in deferred if n >= 2]
    assert together, f"never saw two of the waits deferred at once: {deferred}"
    start, end = min(together), max(together)
    window = end - start
    in_window = [t for t in polls if start <= t <= end]
    print(f"\n{SHARED_WAITS} deferred waits: {len(in_window)} ListSystems polls in {window:.1f}s "
          f"with >= 2 waits deferred; {len(gets)} GetSystem calls in the whole run")
    # One poll per 1 s interval for the whole group (a per-trigger poll would make one GetSystem each).
    assert window >= 3, f"the waits overlapped only {window:.1f}s: too short to measure"
    assert len(in_window) <= window / 1.0 + 2, (len(in_window), window)
    assert gets == [], "a wait polled its own system instead of reading the shared snapshot"


def test_deferred_waits_in_a_real_triggerer_with_the_sync_only_official_client(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    """``extra.client=puddle``: the triggerer runs the (sync-only) stand-in's calls in its thread pool."""
    af, dag_id, run_id = stack.airflow, OFFICIAL_DAG_ID, "e2e_official"
    af.cli("dags", "trigger", dag_id, "-r", run_id)

    def finished() -> dict[str, Any] | None:
        run = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id, trigger_logs_of="create"))
    states = {task_id: ti["state"] for task_id, ti in af.task_instances(dag_id, run_id).items()}
    assert states == {"create": "success", "terminate": "success"}, af.diagnostics(dag_id, run_id)
    assert run["state"] == "success"
    (system,) = [s for s in client_for(stack.fast).list() if s.name == "e2e-official"] or [None]
    assert system is None or system.status == TERMINATING, system  # terminated systems leave the list
    for task_id in ("create", "terminate"):
        log = af.trigger_log(dag_id, run_id, task_id)
        assert "e2e-official" in log, f"{task_id}: its wait did not run in the triggerer"
