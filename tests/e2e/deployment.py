"""The end-to-end deployment: Airflow's components as separate processes (api-server, scheduler,
dag-processor, triggerer) and the DAGs the e2e tests run, shared by the tests of this package.

The reliability harness (``reliability.airflow.Deployment``) runs them in a temporary
``AIRFLOW_HOME`` on SQLite with one triggerer (``make reliability`` runs the same harness on
PostgreSQL with two), against three in-process emulators on loopback. ``puddle_default`` moves
systems in 1 s steps; ``puddle_slow`` in slow steps, so a create stays deferred long enough to
be killed; ``puddle_held`` only when a test advances its clock; ``puddle_official`` is the fast
emulator through ``extra.client=puddle`` over the stand-in ``puddle.client`` (on the components'
``PYTHONPATH``). The connections are env vars of every component. The DAG files are written
before Airflow starts, so the first parse finds them. A worker that stops heartbeating fails its
task 15 s after its last heartbeat (``HEARTBEAT_SETTINGS``), so a crashed worker's task retries soon.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_puddle.client.models import System
from airflow_puddle.emulator.server import EmulatorServer
from reliability.airflow import Deployment
from reliability.procs import sweep
from tests.conftest import STANDIN, connection_json

FAST_STEP_S = 1.0  # create: 3 steps to Started; terminate: 1 step
SLOW_STEP_S = 6.0  # create stays Initializing 18 s; the kill's Failing and Terminating steps take 6 s each
HELD_STEP_S = 600.0  # nothing moves unless a test advances the clock
# A task whose worker was SIGKILLed fails (and retries) this long after its last heartbeat (default 300 s);
# the worker heartbeats every 2 s, the scheduler checks every 2 s.
HEARTBEAT_SETTINGS = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
                      "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                      "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2"}
RUN_TIMEOUT_S = 180.0
KILL_TIMEOUT_S = 60.0

PIPELINE_DAG_ID = "puddle_e2e_pipeline"
H2O3_DAG_ID = "puddle_h2o3_train_pipeline"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
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
    # No retries: this DAG is about a user's kill of the first try.
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

RETRY_DAG_ID = "puddle_e2e_retry"
RETRY_SYSTEM_NAME = "e2e-retry"
RETRY_DAG = _DAG_HEADER + f'''
with DAG(
    dag_id="{RETRY_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"retries": 1, "retry_delay": timedelta(0)}},
):
    # Waits in the worker, on the emulator whose clock the test holds: the worker is mid-wait when it is killed.
    PuddleCreateSystemOperator(
        task_id="create", name="{RETRY_SYSTEM_NAME}", puddle_conn_id="puddle_held", deferrable=False,
        terminate_on_failure=True, poll_interval=0.5, **DAI,
    )
'''


@dataclass
class Stack:
    airflow: Deployment
    fast: EmulatorServer
    slow: EmulatorServer
    held: EmulatorServer


def by_task(tis: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Task instances of an unmapped DAG by task id."""
    return {ti["task_id"]: ti for ti in tis}


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """Airflow's components on SQLite (one triggerer) through the reliability harness, three emulators in process."""
    home = Path(tempfile.mkdtemp(prefix="puddle-e2e-"))
    run_id = f"e2e-{uuid.uuid4()}"
    emulators: list[EmulatorServer] = []
    deployment: Deployment | None = None
    try:
        for name, step in (("fast", FAST_STEP_S), ("slow", SLOW_STEP_S), ("held", HELD_STEP_S)):
            # The fast one runs real H2O-3 nodes (for the H2O-3 example DAG); DAI systems stay simulated.
            emulator = EmulatorServer(port=0, db_path=str(home / f"puddle-{name}.sqlite"), step_seconds=step,
                                      h2o3="real" if name == "fast" else "simulated", h2o3_max_nodes=2)
            emulator.start()
            emulators.append(emulator)
        fast, slow, held = emulators
        deployment = Deployment(
            home / "airflow", run_id, f"sqlite:///{home / 'airflow' / 'airflow.db'}", triggerers=1,
            connections={"puddle_default": connection_json(fast.address),
                         "puddle_slow": connection_json(slow.address),
                         "puddle_held": connection_json(held.address),
                         "puddle_official": connection_json(fast.address, client="puddle")},
            # the stand-in puddle.client, and the project root it builds from (tests/official)
            settings={"AIRFLOW__CORE__PARALLELISM": "32", "PUDDLE_POLL_INTERVAL": "1", **HEARTBEAT_SETTINGS,
                      "PYTHONPATH": os.pathsep.join(p for p in (str(STANDIN), str(STANDIN.parents[2]),
                                                                os.environ.get("PYTHONPATH")) if p)},
        )
        dags = ((PIPELINE_DAG_ID, PIPELINE_DAG), (KILL_DAG_ID, KILL_DAG), (SHARED_DAG_ID, SHARED_DAG),
                (OFFICIAL_DAG_ID, OFFICIAL_DAG), (RETRY_DAG_ID, RETRY_DAG))
        for dag_id, source in dags:
            (deployment.dags / f"{dag_id}.py").write_text(source)  # before Airflow starts: the first parse finds them
        shutil.copy(EXAMPLE_DAGS / f"{H2O3_DAG_ID}.py", deployment.dags)
        started = time.monotonic()
        deployment.start([*(dag_id for dag_id, _ in dags), H2O3_DAG_ID])
        print(f"\nairflow components ready in {time.monotonic() - started:.0f}s")
        yield Stack(deployment, fast, slow, held)
    finally:
        try:
            if deployment is not None:
                stopping = time.monotonic()
                killed = deployment.stop() + sweep(run_id)
                print(f"\nairflow components stopped in {time.monotonic() - stopping:.0f}s")
                if killed:
                    print(f"SIGKILLed: {killed}")
        finally:
            for emulator in emulators:
                emulator.stop()
            if os.environ.get("PUDDLE_E2E_KEEP_HOME"):
                print(f"\nkept {home}")
            else:
                shutil.rmtree(home, ignore_errors=True)
