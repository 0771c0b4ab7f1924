"""Airflow's components as separate processes, and the ways to talk to them.

:class:`Deployment` runs ``airflow db migrate`` and then, each as its own :class:`Service`:
api-server, scheduler (LocalExecutor or CeleryExecutor), dag-processor, N triggerers and, for
Celery, the Celery workers, in a fresh ``AIRFLOW_HOME``, on loopback only (the scheduler,
triggerers and workers skip their log servers, which would bind every interface; the api-server
reads the log files from the shared home).
:class:`AirflowApi` is the REST client (DAG runs, task states, clears); :class:`MetadataDb`
reads the metadata DB (PostgreSQL or SQLite) through SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from reliability.procs import RUN_MARKER, Service, free_port, wait_until
from reliability.workers import EXECUTORS, celery_worker_args

STARTUP_TIMEOUT_S = 180.0
FINISHED = ("success", "failed")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOOPBACK = "127.0.0.1,localhost,::1"


def log_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log file (a line that is not JSON becomes its ``event``)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        records.append(record if isinstance(record, dict) else {"event": line})
    return records


class ApiError(RuntimeError):
    """A REST call answered outside 2xx."""


def airflow_bin() -> str:
    """The ``airflow`` script next to this interpreter."""
    return str(Path(sys.executable).with_name("airflow"))


class AirflowApi:
    """The api-server's public REST API (simple auth manager, every user an admin).

    Every response body is appended to ``transcript`` (if given), so a secret hunt can read
    what the API answered during the whole run.
    """

    def __init__(self, base_url: str, transcript: Path | None = None) -> None:
        self.base_url = base_url
        self._transcript = transcript
        self._token: str | None = None

    def _token_value(self) -> str:
        if self._token is None:
            status, body = self.request("GET", "/auth/token", auth=False)
            if status not in (200, 201) or not isinstance(body, dict):
                raise ApiError(f"GET /auth/token answered {status}")
            self._token = str(body["access_token"])
        return self._token

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True,
                timeout: float = 60) -> tuple[int, Any]:
        """One call: (status, decoded JSON body, or the text of an error)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token_value()}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with _NO_PROXY.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode(errors="replace")
        if self._transcript is not None:
            with open(self._transcript, "a") as out:
                out.write(f"{method} {path} {status}\n{text}\n")
        if 200 <= status < 300:
            return status, json.loads(text) if text else None
        return status, text[:3000]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call that must succeed; its decoded body."""
        status, payload = self.request(method, path, body)
        if not 200 <= status < 300:
            raise ApiError(f"{method} {path} answered {status}: {payload}")
        return payload

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a DAG run now."""
        return dict(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                             {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (one page: see ``maximum_page_limit``)."""
        body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        tis = list(body["task_instances"])
        if body["total_entries"] != len(tis):
            raise ApiError(f"{dag_id}/{run_id}: got {len(tis)} of {body['total_entries']} task instances")
        return tis

    def states(self, dag_id: str, run_id: str) -> dict[str, int]:
        """How many task instances of the run are in each state."""
        counts: dict[str, int] = {}
        for ti in self.task_instances(dag_id, run_id):
            counts[str(ti["state"])] = counts.get(str(ti["state"]), 0) + 1
        return counts

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float,
                     diagnostics: Callable[[], str] = lambda: "") -> dict[str, Any]:
        """Poll the run until it is success or failed; returns it."""

        def finished() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in FINISHED else None

        return wait_until(f"{dag_id}/{run_id} to end", finished, timeout, 1.0, diagnostics)

    def clear(self, dag_id: str, run_id: str, task_ids: Sequence[str]) -> Any:
        """Clear tasks of a run (what the UI's Clear does); they run again."""
        return self.api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", {
            "dag_run_id": run_id, "task_ids": list(task_ids), "dry_run": False, "only_failed": False,
            "reset_dag_runs": True,
        })


class MetadataDb:
    """Short read-only queries on the metadata DB (``:name`` parameters)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(url, pool_pre_ping=True)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def tables(self) -> list[str]:
        """Every table name."""
        from sqlalchemy import inspect

        return list(inspect(self._engine).get_table_names())

    def close(self) -> None:
        self._engine.dispose()


class Deployment:
    """Airflow's components in one fresh ``AIRFLOW_HOME``, each its own process, against ``sql_alchemy_conn``.

    :param connections: ``AIRFLOW_CONN_<ID>`` values by connection id (every component sees them).
    :param settings: more environment (``AIRFLOW__SECTION__KEY`` values) on top of the defaults below.
    :param executor: ``local`` or ``celery`` (:data:`~reliability.workers.EXECUTORS`).
    :param celery_workers: how many ``airflow celery worker`` processes to start (Celery only; its
        broker and result backend come in ``settings``).
    """

    def __init__(self, home: Path, run_id: str, sql_alchemy_conn: str, *, connections: Mapping[str, str],
                 triggerers: int = 2, settings: Mapping[str, str] | None = None, executor: str = "local",
                 celery_workers: int = 0) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor: {executor!r} is not one of {sorted(EXECUTORS)}")
        if celery_workers and executor != "celery":
            raise ValueError(f"celery_workers: {celery_workers} workers need executor 'celery', not {executor!r}")
        self.executor = executor
        self.celery_workers = celery_workers
        self.home = home
        self.run_id = run_id
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.fernet_key = Fernet.generate_key().decode()
        self.sql_alchemy_conn = sql_alchemy_conn
        self.triggerer_count = triggerers
        self.env = self._env(connections, settings or {})
        self.api = AirflowApi(f"http://127.0.0.1:{self.api_port}", transcript=home / "rest-transcript.txt")
        self.db = MetadataDb(sql_alchemy_conn)
        self.services: dict[str, Service] = {}
        self.triggerer_jobs: dict[str, int] = {}  # triggerer service name -> its TriggererJob id

    def _env(self, connections: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
        """The components' environment, from scratch: none of this process's AIRFLOW* settings leak in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        api = f"http://127.0.0.1:{self.api_port}"
        env.update({
            RUN_MARKER: self.run_id,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "NO_PROXY": _LOOPBACK, "no_proxy": _LOOPBACK,  # httpx (execution API) and gRPC must not use a proxy
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.executor],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # schedule=None: they run only when triggered
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
            # never served (--skip-serve-logs), but kept off the default ports all the same
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        })
        env.update({f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections.items()})
        env.update(settings)
        return env

    # -- lifecycle -------------------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str) -> Service:
        service = Service.spawn(name, [airflow_bin(), *args], env=self.env, cwd=self.home,
                                log_path=self.home / "components" / f"{name}.log")
        self.services[name] = service
        return service

    def migrate(self) -> None:
        """``airflow db migrate``: the schema, in the fresh database."""
        migrate = self._spawn("db-migrate", "db", "migrate")
        if migrate.proc.wait(timeout=600) != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.tail()}")
        del self.services["db-migrate"]

    def start(self, dag_ids: Sequence[str]) -> None:
        """Start every component and wait until all are healthy and ``dag_ids`` are parsed."""
        self.migrate()
        self._spawn("api-server", "api-server")
        self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        self._spawn("dag-processor", "dag-processor")
        for n in range(1, self.triggerer_count + 1):
            self.start_triggerer(f"triggerer-{n}")
        for n in range(1, self.celery_workers + 1):
            self._spawn(f"celery-worker-{n}", *celery_worker_args(f"worker-{n}"))
        wait_until("the api-server and healthy components", self._healthy, STARTUP_TIMEOUT_S, 0.5,
                   self.diagnostics)
        wait_until("the Celery workers ready", self._workers_ready, STARTUP_TIMEOUT_S, 0.5, self.diagnostics)
        wait_until(f"DAGs {list(dag_ids)} parsed", lambda: self._parsed(dag_ids), STARTUP_TIMEOUT_S, 0.5,
                   self.diagnostics)

    def start_triggerer(self, name: str) -> int:
        """Start a triggerer and return its job id (triggerers start one at a time, so the new job is its)."""
        known = {row[0] for row in self.db.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")}
        service = self._spawn(name, "triggerer", "--skip-serve-logs")

        def new_job() -> int | None:
            if not service.running():
                raise RuntimeError(f"{name} exited {service.proc.returncode}:\n{service.tail()}")
            rows = self.db.query("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")
            fresh = [row[0] for row in rows if row[0] not in known]
            return int(fresh[0]) if fresh else None

        job_id = wait_until(f"{name}'s job row", new_job, STARTUP_TIMEOUT_S, 0.5, self.diagnostics)
        self.triggerer_jobs[name] = job_id
        return job_id

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group (a crash, not a shutdown)."""
        self.services[name].kill_group()

    def _healthy(self) -> bool | None:
        for service in self.services.values():
            if not service.running():
                raise RuntimeError(f"{service.name} exited {service.proc.returncode}:\n{service.tail()}")
        try:
            status, body = self.api.request("GET", "/api/v2/monitor/health", auth=False, timeout=5)
        except OSError:
            return None
        if status != 200:
            return None
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return True if all((body.get(p) or {}).get("status") == "healthy" for p in parts) else None

    def _workers_ready(self) -> bool | None:
        """Every Celery worker has logged ``celery@<name> ready.`` (it consumes from the broker)."""
        workers = [s for name, s in self.services.items() if name.startswith("celery-worker-")]
        return True if all(" ready." in s.tail(400) for s in workers) else None

    def _parsed(self, dag_ids: Sequence[str]) -> bool | None:
        _, errors = self.api.request("GET", "/api/v2/importErrors")
        if isinstance(errors, dict) and errors.get("import_errors"):
            raise RuntimeError(f"DAG import errors: {json.dumps(errors['import_errors'], indent=1)[:3000]}")
        return True if all(self.api.request("GET", f"/api/v2/dags/{d}")[0] == 200 for d in dag_ids) else None

    def stop(self) -> list[str]:
        """Stop every component by pid, triggerers and scheduler first, then the Celery workers (they
        finish their tasks' reports to the api-server); returns what had to be SIGKILLed."""
        killed: list[str] = []
        order = sorted(self.services, key=lambda n: ("api-server" in n, "dag-processor" in n, "celery" in n))
        for name in order:
            service = self.services[name]
            if service.running():
                killed += service.stop(signal.SIGTERM)
        self.db.close()
        return killed

    # -- reading what happened --------------------------------------------------------------------------

    def diagnostics(self, dag_id: str | None = None, run_id: str | None = None, trigger_logs_of: str = "") -> str:
        """Task states of a run, a task's trigger log, and the end of each component's output.

        Nothing secret: the REST token is not in the components' output.
        """
        lines = []
        if dag_id and run_id:
            try:
                states = {(ti["task_id"], ti["map_index"]): (ti["state"], ti["try_number"])
                          for ti in self.api.task_instances(dag_id, run_id)}
                lines.append(f"task states (state, try) of {dag_id}/{run_id}: {states}")
            except (OSError, ApiError) as err:
                lines.append(f"task states of {dag_id}/{run_id} unavailable: {err}")
            if trigger_logs_of:
                log = self.trigger_log(dag_id, run_id, trigger_logs_of)
                lines += [f"--- trigger log of {trigger_logs_of} ---", log]
        for service in self.services.values():
            lines += [f"--- {service.name} (pid {service.pid}, exit {service.proc.poll()}) ---", service.tail(25)]
        return "\n".join(lines)

    def decrypt(self, stored: str) -> str:
        """A Fernet-encrypted column as text (trigger kwargs a client sent encrypted); plain JSON passes through."""
        if stored.startswith("{"):
            return stored
        return Fernet(self.fernet_key.encode()).decrypt(stored.encode()).decode()

    def trigger_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The trigger logs of a task (every try, every triggerer), one ``timestamp level event`` a line."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        lines = []
        for path in sorted(folder.rglob("*.log.trigger.*.log")):
            lines += [f"{r.get('timestamp')} {r.get('level')} {r.get('event')}" for r in log_records(path)]
        return "\n".join(lines)

    def wait_for_ti_states(self, dag_id: str, run_id: str, want: Callable[[list[dict[str, Any]]], bool],
                           what: str, timeout: float) -> list[dict[str, Any]]:
        """Poll the run's task instances until ``want(tis)``; returns them."""

        def check() -> list[dict[str, Any]] | None:
            tis = self.api.task_instances(dag_id, run_id)
            return tis if want(tis) else None

        return wait_until(what, check, timeout, 1.0, self.diagnostics)
