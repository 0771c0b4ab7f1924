"""The whole deployment of a reliability run: PostgreSQL, the emulators, Airflow with two triggerers,
on one executor: LocalExecutor, or CeleryExecutor with Redis and two Celery workers.

Each fault scenario gets an emulator of its own, so its faults touch only its own runs and the
scenarios can run side by side. Every emulator and connection carries the run's canary API
secret; every component logs at DEBUG.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability import dags
from reliability.airflow import Deployment
from reliability.emulator import EmulatorProcess
from reliability.postgres import PostgresCluster
from reliability.procs import RUN_MARKER, sweep, tree
from reliability.redis import RedisServer
from reliability.report import Progress
from reliability.workers import CELERY_WORKERS, Killed, celery_settings, kill_task_worker

HELD_STEP_S = 600.0  # a step no run outlasts: a system moves only when the scenario advances the emulator's clock
# name -> (lifecycle step in seconds, CU capacity). One emulator per connection ``puddle_<name>``.
EMULATORS: dict[str, tuple[float, int]] = {
    "waits": (600.0, 100_000),  # the 200 waits: nothing boots until the scenario advances the clock
    "default": (30.0, 1_000),  # the stop-idle example DAG (its connection is puddle_default)
    "fast": (1.0, 1_000),  # clear/adopt, the browser checks
    # fault scenarios: steps long enough for a fault to land inside each wait
    "unavailable": (5.0, 64),
    "latency": (4.0, 64),
    "restart": (4.0, 64),
    "tokens": (5.0, 64),
    "bootfail": (8.0, 64),
    "watch": (1.0, 64),  # watcher-downtime: the watched system
    # crashes and timeouts (scenarios/durable.py, exec_timeout.py): nothing moves unless the scenario advances the clock
    "durable": (HELD_STEP_S, 64),
    "restarts": (HELD_STEP_S, 64),
    "deadline": (HELD_STEP_S, 64),
}
RPC_TIMEOUT_S = 2  # the latency scenario's connection: a call slower than this misses its deadline

_SETTINGS = {
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",  # secrets must stay out of logs at every level
    "AIRFLOW__CORE__PARALLELISM": "32",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000",
    "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "1000",
    "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the connection form's Test button
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
    # a task whose worker was SIGKILLed fails (and retries) this long after its last heartbeat (default 300 s)
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    "PUDDLE_POLL_INTERVAL": "2",  # the example stop-idle DAG's poll interval
}


@dataclass
class Stack:
    """What a scenario works with: the deployment, the emulators by name, the canary, progress lines."""

    home: Path
    run_id: str
    canary: str
    deployment: Deployment
    emulators: dict[str, EmulatorProcess]
    progress: Progress
    executor: str = "local"
    postgres: PostgresCluster | None = None
    redis: RedisServer | None = None
    # systems the scenarios expect each emulator to hold, by name, and those a teardown must have terminated
    expected: dict[str, set[str]] = field(default_factory=dict)
    must_be_terminated: dict[str, set[str]] = field(default_factory=dict)

    def expect(self, emulator: str, names: set[str], *, terminated: bool) -> None:
        """Record systems a scenario creates on ``emulator`` (and whether something should have ended them)."""
        self.expected.setdefault(emulator, set()).update(names)
        if terminated:
            self.must_be_terminated.setdefault(emulator, set()).update(names)

    def pids(self) -> list[int]:
        """The pids of every service the run started and still runs (PostgreSQL, emulators, Airflow)."""
        services = [*self.deployment.services.values(), *(e.service for e in self.emulators.values())]
        if self.postgres is not None:
            services.append(self.postgres.service)
        if self.redis is not None:
            services.append(self.redis.service)
        return [s.pid for s in services if s is not None and s.running()]

    def ports(self) -> list[int]:
        """Every port the run's services listen on."""
        ports = [self.deployment.api_port, *(e.port for e in self.emulators.values())]
        ports += [self.postgres.port] if self.postgres is not None else []
        return ports + ([self.redis.port] if self.redis is not None else [])

    def kill_task_worker(self, ti_id: str) -> Killed:
        """SIGKILL the worker process running task instance ``ti_id`` (its ``id`` in the REST API) on
        either executor: see :func:`reliability.workers.kill_task_worker`."""
        services = {name: s.pid for name, s in self.deployment.services.items()}
        return kill_task_worker(lambda: tree(self.pids()), ti_id, services)

    def systems(self, emulator: str) -> list[dict[str, Any]]:
        """Every system the emulator holds, terminated ones too, read from its SQLite file (read-only).

        One API call first: the emulator applies due lifecycle steps when it serves a call, so the
        file is then up to date.
        """
        auth, client = self.emulators[emulator].client()
        try:
            client.list()
        finally:
            auth.close()
        path = self.emulators[emulator].db
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT id, name, status, password FROM systems")]
        finally:
            db.close()


def start(waits: int, short_waits: int, progress: Progress, executor: str = "local") -> Stack:
    """Start everything on ``executor`` (``local`` or ``celery``); on failure, stop what was started and re-raise."""
    home = Path(tempfile.mkdtemp(prefix="puddle-reliability-"))
    run_id = f"reliability-{uuid.uuid4()}"
    canary = f"canary-api-secret-{uuid.uuid4().hex}"
    env = {**os.environ, RUN_MARKER: run_id}
    emulators: dict[str, EmulatorProcess] = {}
    postgres: PostgresCluster | None = None
    redis: RedisServer | None = None
    try:
        postgres = PostgresCluster(env, home / "postgres-logs").start()
        progress(f"PostgreSQL on 127.0.0.1:{postgres.port}")
        settings = dict(_SETTINGS)
        if executor == "celery":
            redis = RedisServer(env, home / "redis-logs").start()
            progress(f"Redis on 127.0.0.1:{redis.port}")
            settings.update(celery_settings(redis.url, "db+" + postgres.url))
        for name, (step, cu) in EMULATORS.items():
            emulators[name] = EmulatorProcess(
                f"emulator-{name}", db=home / "emulators" / f"{name}.sqlite",
                log_path=home / "emulators" / f"{name}.log", env=env, secret=canary, step_seconds=step,
                cu_capacity=cu,
            ).start()
        connections = {f"puddle_{name}": emulator.connection() for name, emulator in emulators.items()}
        connections["puddle_latency"] = emulators["latency"].connection(timeout=RPC_TIMEOUT_S)
        deployment = Deployment(home / "airflow", run_id, postgres.url, connections=connections, triggerers=2,
                                settings=settings, executor=executor,
                                celery_workers=CELERY_WORKERS if executor == "celery" else 0)
        dag_ids = dags.write(deployment.dags, waits, short_waits)
        deployment.start(dag_ids)
        progress(f"Airflow up on the {executor} executor: api-server {deployment.api.base_url}, "
                 f"triggerer jobs {deployment.triggerer_jobs}")
    except BaseException:
        for emulator in emulators.values():
            emulator.stop()
        for server in (redis, postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        sweep(run_id)
        raise
    return Stack(home=home, run_id=run_id, canary=canary, deployment=deployment, emulators=emulators,
                 progress=progress, executor=executor, postgres=postgres, redis=redis)


def stop(stack: Stack) -> list[str]:
    """Stop Airflow, the emulators and PostgreSQL by pid; returns what had to be SIGKILLed (incl. leftovers)."""
    killed = stack.deployment.stop()
    for emulator in stack.emulators.values():
        killed += emulator.stop()
    if stack.redis is not None:
        killed += stack.redis.stop()
    if stack.postgres is not None:
        killed += stack.postgres.stop()
    return killed + sweep(stack.run_id)


def remove(stack: Stack) -> None:
    """Delete the run's home (logs, emulator databases, Airflow's home)."""
    shutil.rmtree(stack.home, ignore_errors=True)
