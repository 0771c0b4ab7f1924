"""Train on a Driverless AI system that lives exactly as long as the run.

``create_system`` (a setup task) creates a DAI system and waits until it is
started; ``train_model`` reaches the system through :class:`PuddleHook` at run
time, trains (here: a simulation that keeps the idle timeout fresh), and
``terminate_system`` (the teardown) terminates the system whether training
succeeded or not. A failed training still fails the run: Airflow ignores a
teardown's success when it judges the run.

Waits run in the triggerer or in the worker as Airflow's
``[operators] default_deferrable`` says. Runs against a real Puddle or the
emulator (``puddle-emulator``) through the ``puddle_default`` connection.

Knobs (environment, read when the file is parsed):

- ``PUDDLE_POLL_INTERVAL``: seconds between status checks and training steps (default 5).
- ``PUDDLE_TRAIN_STEPS``: how many simulated training steps (default 3).

Trigger with ``{"fail_training": true}`` to see the teardown clean up after a failure.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.hooks.api import System
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator, PuddleTerminateSystemOperator

log = logging.getLogger(__name__)

POLL_INTERVAL = float(os.environ.get("PUDDLE_POLL_INTERVAL", "5"))
TRAIN_STEPS = int(os.environ.get("PUDDLE_TRAIN_STEPS", "3"))
CONN_ID = "puddle_default"

# One system per run: the name is derived from the run id, so it is stable across retries (a
# retried create adopts the system its first try made) and two runs never share a system, even
# runs triggered in the same second. It is one DNS label: lowercase letters, digits, hyphens.
SYSTEM_NAME = "train-{{ run_system_suffix(run_id) }}"


def run_system_suffix(run_id: str) -> str:
    """12 hex digits that identify a DAG run (its run id is unique within the DAG)."""
    return hashlib.sha256(f"puddle_train_pipeline/{run_id}".encode()).hexdigest()[:12]


@task(task_id="train_model")
def train_model(system: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connect to the DAI system through the hook, train, keep the system from idling out.

    Returns only non-secret facts: the DAI password is read, used, and dropped.
    """
    fail = bool((params or {}).get("fail_training"))
    with PuddleHook(puddle_conn_id=CONN_ID) as hook:
        systems = hook.get_systems_client()
        current = systems.get(system["id"])
        if current is None or current.status != System.SYSTEM_STATUS_STARTED.code:
            raise AirflowException(f"system {system['id']} is not started: {current!r}")
        # Fetched now, not from XCom; the hook masks the password in this task's logs.
        creds = hook.get_system_credentials(current.id)
        if not (creds.url and creds.username and creds.password):
            raise AirflowException(f"system {current.name} has no DAI endpoint or credentials yet")
        url = creds.url
        # A real job would log in here, e.g. driverlessai.Client(creds.url, creds.username, creds.password).
        log.info("Connected to Driverless AI at %s as %s", creds.url, creds.username)

        for step in range(1, TRAIN_STEPS + 1):
            time.sleep(POLL_INTERVAL)
            refreshed = systems.refresh_idle_timeout(current.id)
            log.info("Training step %d/%d on %s; idle timeout pushed to %s",
                     step, TRAIN_STEPS, current.name, refreshed.idle_timeout)
            if fail:
                raise AirflowException("training failed (the run asked for it with fail_training)")

        experiments = current.models or []
        best = max(experiments, key=lambda m: m.score, default=None)
        return {
            "system_id": current.id,
            "system_name": current.name,
            "url": url,
            "experiment": {
                "name": f"{current.name}-experiment",
                "steps": TRAIN_STEPS,
                "baseline": best.description if best else None,
                "score": round(best.score, 4) if best else None,
            },
        }


# A retry reconnects to the system the first try asked for, by id, and keeps owning it (the task
# state store): use retries. They also recover from an Airflow race (apache/airflow#72716) that
# can fail a task the moment it defers.
RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=5)}


with DAG(
    dag_id="puddle_train_pipeline",
    description="Create a DAI system, train on it, terminate it (even when training fails)",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["puddle", "example", "driverless-ai"],
    user_defined_macros={"run_system_suffix": run_system_suffix},
    params={
        "fail_training": Param(False, type="boolean", description="Make training fail, to watch the teardown"),
    },
) as dag:
    create_system = PuddleCreateSystemOperator(
        task_id="create_system",
        puddle_conn_id=CONN_ID,
        name=SYSTEM_NAME,
        product="dai",
        version="1.11.1",
        instance_type_name="m5.2xlarge",
        tags={"Team": "data-science"},
        idle_interval=60,
        terminate_on_failure=True,
        poll_interval=POLL_INTERVAL,
        **RETRIES,
    ).as_setup()

    trained = train_model(create_system.output)

    terminate_system = PuddleTerminateSystemOperator(
        task_id="terminate_system",
        puddle_conn_id=CONN_ID,
        # ``create_system.output["id"]`` would pull the XCom *key* "id"; the id is a field of the dict.
        system_id="{{ ti.xcom_pull(task_ids='create_system')['id'] }}",
        poll_interval=POLL_INTERVAL,
        **RETRIES,
    ).as_teardown(setups=create_system)

    trained >> terminate_system
