"""The DAG files the scenarios run, written into the deployment's DAGs folder before Airflow starts.

Every DAG has ``schedule=None``: it runs only when a scenario triggers it over REST. Tasks that
only wait keep ``retries=2``: Airflow's race apache/airflow#72716 / #71580 may fail a task that
has just resumed, and the operators are idempotent, so a retry recovers (the run counts these).
"""

from __future__ import annotations

import shutil
from pathlib import Path

WAITS_DAG_ID = "rel_waits"
SHORT_DAG_ID = "rel_waits_short"
PIPELINE_DAG_ID = "rel_pipeline"
BOOTFAIL_DAG_ID = "rel_bootfail"
ADOPT_DAG_ID = "rel_adopt"
WORKER_KILL_DAG_ID = "rel_worker_kill"
DURABLE_CREATE_DAG_ID = "rel_durable_create"
DURABLE_RESTART_DAG_ID = "rel_durable_restart"
EXEC_TIMEOUT_DAG_ID = "rel_exec_timeout"
KILLED_DAG_IDS = (WORKER_KILL_DAG_ID, DURABLE_CREATE_DAG_ID, DURABLE_RESTART_DAG_ID)
"""The DAGs whose worker a scenario SIGKILLs on purpose: Celery reports it as a ``state mismatch``, no race."""
STOP_IDLE_DAG_ID = "puddle_stop_idle_systems"  # the example DAG, as shipped

DAI = '{"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": {"Team": "ml"}}'

_HEADER = f'''
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import (
    PuddleCreateSystemOperator,
    PuddleRestartSystemOperator,
    PuddleTerminateSystemOperator,
)

DAI = {DAI}
START = pendulum.datetime(2024, 1, 1, tz="UTC")
RACE_RETRIES = {{"retries": 2, "retry_delay": timedelta(seconds=2)}}
'''

_WAITS = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False, max_active_tasks=1000,
         default_args={default_args}):
    PuddleCreateSystemOperator.partial(
        task_id="create", puddle_conn_id="{conn}", deferrable=True, poll_interval={poll}, timeout={timeout},
        **DAI,
    ).expand(name=[f"{prefix}-{{n:03d}}" for n in range({count})])
'''

# create (setup) -> use (reads the DAI credentials through the hook, as a training task would) -> terminate
# (teardown). The connection and the system's name come from the run's conf.
_PIPELINE = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False,
         params={{"conn": Param("puddle_fast", type="string"), "system_name": Param("rel-pipeline", type="string"),
                  "hold": Param(0, type="integer")}}):
    create = PuddleCreateSystemOperator(
        task_id="create", puddle_conn_id="{{{{ params.conn }}}}", name="{{{{ params.system_name }}}}",
        deferrable=True, terminate_on_failure=True, poll_interval=1, {create_retries}, **DAI,
    )

    @task(**RACE_RETRIES)
    def use(system: dict, params=None):
        import time

        with PuddleHook(puddle_conn_id=params["conn"]) as hook:
            creds = hook.get_system_credentials(system["id"])
            print("DAI at", creds.url, "as", creds.username)
        time.sleep(int(params["hold"]))
        return creds.url

    terminate = PuddleTerminateSystemOperator(
        task_id="terminate", puddle_conn_id="{{{{ params.conn }}}}",
        system_id="{{{{ ti.xcom_pull(task_ids='create')['id'] }}}}", deferrable=True, poll_interval=1,
        **RACE_RETRIES,
    )
    use(create.output) >> terminate.as_teardown(setups=create)
'''

_ADOPT = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False, default_args=RACE_RETRIES):
    PuddleCreateSystemOperator(
        task_id="create", puddle_conn_id="{conn}", name="{name}", deferrable=True, poll_interval=1, **DAI,
    )
'''

# One task that holds its worker on try 1 (long past the run) and returns at once on try 2: the check of
# the hook that SIGKILLs the worker running a task (reliability/scenarios/worker_kill.py).
_WORKER_KILL = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False):
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def hold(ti=None):
        import time

        if ti.try_number == 1:
            time.sleep({hold})
        return ti.try_number

    hold()
'''
WORKER_KILL_HOLD_S = 1800

# An asset whose AssetWatcher follows one named system into Failed (reliability/scenarios/watch.py); each asset
# event runs the DAG once.
_WATCH = '''
from airflow.sdk import Asset, AssetWatcher

from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

failed = Asset(name="{asset}", uri="{uri}", watchers=[AssetWatcher(
    name="{asset}", trigger=PuddleSystemStateTrigger(
        system_name="{name}", target="failed", deadline=None, puddle_conn_id="{conn}", poll_interval={poll}))])

with DAG("{dag_id}", schedule=[failed], start_date=START, catchup=False):
    @task
    def report(triggering_asset_events=None):
        return [e.extra["payload"]["system_id"] for events in triggering_asset_events.values() for e in events]

    report()
'''
WATCH_DAG_ID = "rel_watch"
WATCH_CONN = "puddle_watch"
WATCH_NAME = "rel-watched"
WATCH_ASSET = "rel-watched-failed"
WATCH_URI = f"puddle://{WATCH_CONN}/systems/{WATCH_NAME}/failed"
WATCH_POLL_S = 1
# Crash a Puddle operator mid-wait (reliability/scenarios/durable.py): waits in the worker, so the worker holds
# while it waits, on emulators whose clock moves only when the scenario advances it. One retry.
_DURABLE_CREATE = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False,
         default_args={{"retries": 1, "retry_delay": timedelta(seconds=1)}}):
    PuddleCreateSystemOperator(
        task_id="create", puddle_conn_id="{conn}", name="{name}", deferrable=False, terminate_on_failure=True,
        poll_interval=1, **DAI,
    )
'''
_DURABLE_RESTART = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False,
         default_args={{"retries": 1, "retry_delay": timedelta(seconds=1)}}):
    PuddleRestartSystemOperator(
        task_id="restart", puddle_conn_id="{conn}", system_name="{name}", deferrable=False, poll_interval=1,
    )
'''
DURABLE_CREATE_CONN = "puddle_durable"
DURABLE_CREATE_NAME = "rel-durable-create"
DURABLE_RESTART_CONN = "puddle_restarts"
DURABLE_RESTART_NAME = "rel-durable-restart"

# A deferred wait whose execution_timeout is shorter than its timeout (reliability/scenarios/exec_timeout.py),
# on an emulator where nothing boots by itself. No retries: the timeout must fail the task, and say so.
_EXEC_TIMEOUT = '''
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False, default_args={{"retries": 0}}):
    PuddleCreateSystemOperator(
        task_id="create", puddle_conn_id="{conn}", name="{name}", deferrable=True, poll_interval={poll},
        timeout={timeout}, execution_timeout=timedelta(seconds={execution_timeout}), **DAI,
    )
'''
EXEC_TIMEOUT_CONN = "puddle_deadline"
EXEC_TIMEOUT_NAME = "rel-exec-timeout"
EXEC_TIMEOUT_POLL_S = 5
EXEC_TIMEOUT_S = 30
EXEC_TIMEOUT_WAIT_TIMEOUT_S = 600

WAITS_CONN = "puddle_waits"
WAITS_POLL_S = 2
SHORT_TIMEOUT_S = 100
ADOPT_CONN = "puddle_fast"
ADOPT_NAME = "rel-adopt"


def write(dags: Path, waits: int, short_waits: int) -> list[str]:
    """Write every scenario's DAG file into ``dags``; returns the DAG ids.

    ``waits`` deferred waits in all: ``waits - short_waits`` in ``rel_waits``, ``short_waits`` in ``rel_waits_short``.
    """
    sources = {
        WAITS_DAG_ID: _WAITS.format(dag_id=WAITS_DAG_ID, default_args="RACE_RETRIES", conn=WAITS_CONN,
                                    poll=WAITS_POLL_S, timeout=1200, prefix="w", count=waits - short_waits),
        # no retries: a timed-out wait must fail, and say so
        SHORT_DAG_ID: _WAITS.format(dag_id=SHORT_DAG_ID, default_args='{"retries": 0}', conn=WAITS_CONN,
                                    poll=WAITS_POLL_S, timeout=SHORT_TIMEOUT_S, prefix="s", count=short_waits),
        PIPELINE_DAG_ID: _PIPELINE.format(dag_id=PIPELINE_DAG_ID, create_retries="**RACE_RETRIES"),
        # no retries on create: a retry would replace the failed system, and this run is about the failure
        BOOTFAIL_DAG_ID: _PIPELINE.format(dag_id=BOOTFAIL_DAG_ID, create_retries="retries=0"),
        ADOPT_DAG_ID: _ADOPT.format(dag_id=ADOPT_DAG_ID, conn=ADOPT_CONN, name=ADOPT_NAME),
        WORKER_KILL_DAG_ID: _WORKER_KILL.format(dag_id=WORKER_KILL_DAG_ID, hold=WORKER_KILL_HOLD_S),
        WATCH_DAG_ID: _WATCH.format(dag_id=WATCH_DAG_ID, asset=WATCH_ASSET, uri=WATCH_URI, name=WATCH_NAME,
                                    conn=WATCH_CONN, poll=WATCH_POLL_S),
        DURABLE_CREATE_DAG_ID: _DURABLE_CREATE.format(dag_id=DURABLE_CREATE_DAG_ID, conn=DURABLE_CREATE_CONN,
                                                      name=DURABLE_CREATE_NAME),
        DURABLE_RESTART_DAG_ID: _DURABLE_RESTART.format(dag_id=DURABLE_RESTART_DAG_ID, conn=DURABLE_RESTART_CONN,
                                                        name=DURABLE_RESTART_NAME),
        EXEC_TIMEOUT_DAG_ID: _EXEC_TIMEOUT.format(
            dag_id=EXEC_TIMEOUT_DAG_ID, conn=EXEC_TIMEOUT_CONN, name=EXEC_TIMEOUT_NAME, poll=EXEC_TIMEOUT_POLL_S,
            timeout=EXEC_TIMEOUT_WAIT_TIMEOUT_S, execution_timeout=EXEC_TIMEOUT_S),
    }
    for dag_id, source in sources.items():
        (dags / f"{dag_id}.py").write_text(_HEADER + source)
    example = Path(__file__).resolve().parents[1] / "example_dags" / f"{STOP_IDLE_DAG_ID}.py"
    shutil.copy(example, dags / example.name)
    return [*sources, STOP_IDLE_DAG_ID]
