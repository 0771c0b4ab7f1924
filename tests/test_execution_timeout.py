"""A deferred wait honours the task's ``execution_timeout`` (Airflow does not while a task is deferred)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowTaskTimeout

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.waits import PuddleWaitTimeout, verdict, wait_deadline
from tests.conftest import load_dag


def test_the_deadline_is_the_sooner_of_timeout_and_what_is_left_of_execution_timeout() -> None:
    start = 1_000_000.0
    ti = SimpleNamespace(start_date=datetime.fromtimestamp(start - 30, tz=UTC))  # this try began 30 s ago
    assert wait_deadline({"ti": ti}, 600, None, start) == (start + 600, "timeout")
    assert wait_deadline({"ti": ti}, 600, timedelta(seconds=90), start) == (start + 60, "execution_timeout")
    assert wait_deadline({"ti": ti}, 20, timedelta(seconds=90), start) == (start + 20, "timeout")


def test_a_wait_ended_by_execution_timeout_is_airflows_task_timeout() -> None:
    event = {"status": "timeout", "target": "started", "message": "still Starting", "deadline_of": "execution_timeout"}
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout passed while waiting for started"):
        verdict(event, sensor=False)
    with pytest.raises(PuddleWaitTimeout):
        verdict({**event, "deadline_of": "timeout"}, sensor=False)


SOURCE = """
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from airflow_puddle.sensors.puddle import PuddleSystemStateSensor

with DAG("exec_timeout", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleSystemStateSensor(task_id="never", system_id="{system_id}", target_state="stopped", deferrable=True,
                            poke_interval=0.2, timeout=600, execution_timeout=timedelta(seconds=2))
"""


@pytest.mark.usefixtures("airflow_db")
def test_a_deferred_wait_ends_at_execution_timeout_not_at_its_timeout(
    puddle_conn: str, emulator: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID,
                                                             DEFAULT_API_SECRET_KEY))
    system = client.wait_for_system_started(client.create("exec-timeout", product="dai", version="1.11.1",
                                                          instance_type_name="m5.2xlarge",
                                                          tags=[TagData("Team", "ml")]).id)
    dag = load_dag(SOURCE.format(system_id=system.id), "exec_timeout.py")
    began = time.monotonic()
    run = dag.test()
    took = time.monotonic() - began
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"never": "failed"}
    out, err = capfd.readouterr()
    assert "execution_timeout passed while waiting for stopped" in caplog.text + out + err
    assert took < 120  # ended by the 2 s execution_timeout, not the 600 s timeout


def test_a_trigger_refuses_an_unknown_deadline_reason() -> None:
    from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

    with pytest.raises(ValueError, match="deadline_of: must be one of timeout, execution_timeout"):
        PuddleSystemStateTrigger(system_id="sys-1", target="started", deadline=time.time() + 60,
                                 deadline_of="forever")
