"""The sensors through real Airflow (``dag.test()``), in poke, reschedule and deferrable modes."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.sensors.puddle import PuddleSystemStateSensor
from tests.conftest import load_dag

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.both_clients]

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}

SOURCE = """
import pendulum
from airflow.sdk import DAG
from airflow_puddle.sensors.puddle import *

S = dict(poke_interval=0.05, mode="{mode}", deferrable={deferrable})
with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleSystemStateSensor(task_id="started", system_id="{started}", target_state="started", **S)
    PuddleSystemStateSensor(task_id="stopped", system_id="{stopped}", target_state="stopped", **S)
    PuddleSystemStateSensor(task_id="failed_at_once", system_id="{failed}", target_state="started", timeout=600, **S)
    PuddleSystemStateSensor(task_id="times_out", system_id="{started}", target_state="stopped", timeout=1, **S)
    PuddleSystemStateSensor(task_id="soft_fail", system_id="{started}", target_state="stopped", timeout=1,
                            soft_fail=True, **S)
    PuddleConfigTomlUploadedSensor(task_id="config", system_id="{started}", **S)
    PuddleCUAvailableSensor(task_id="cu", cu=1, poke_interval=0.05, mode="{mode}")
    PuddleSystemStateSensor(task_id="by_name", system_name="s-started", target_state="started", **S)
    PuddleSystemStateSensor(task_id="by_name_stopped", system_name="s-stopped", target_state="stopped", **S)
    PuddleSystemStateSensor(task_id="by_name_gone", system_name="s-never", target_state="terminated", **S)
    PuddleSystemStateSensor(task_id="by_name_missing", system_name="s-never", target_state="started", **S)
    PuddleSystemStateSensor(task_id="by_name_soft", system_name="s-never", target_state="started", soft_fail=True,
                            **S)
"""


@pytest.mark.parametrize(("mode", "deferrable"), [("poke", False), ("reschedule", False), ("poke", True)])
def test_sensors(puddle_conn: str, emulator: Any, admin: Any, mode: str, deferrable: bool) -> None:
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID,
                                                             DEFAULT_API_SECRET_KEY))
    started = client.create("s-started", **DAI)  # still booting when the sensor starts
    stopped = client.wait_for_system_started(client.create("s-stopped", **DAI).id)
    client.stop(stopped.id)
    failed = client.create("s-failed", **DAI)
    admin.fail_next_transition(failed.id)
    client.wait_for_system_started(started.id)
    client.update_config_toml(started.id, "a = 1")
    dag_id = f"sensors_{mode}_{int(deferrable)}"
    dag = load_dag(SOURCE.format(mode=mode, deferrable=deferrable, dag_id=dag_id, started=started.id,
                                 stopped=stopped.id, failed=failed.id), f"{dag_id}.py")
    run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {
        "started": "success", "stopped": "success", "config": "success", "cu": "success",
        "failed_at_once": "failed", "times_out": "failed", "soft_fail": "skipped",
        "by_name": "success", "by_name_stopped": "success", "by_name_gone": "success",
        "by_name_missing": "failed", "by_name_soft": "skipped",
    }


def test_deferred_timeout_event_is_a_sensor_timeout() -> None:
    sensor = PuddleSystemStateSensor(task_id="t", system_id="x", target_state="stopped", deferrable=True)
    event = {"status": "timeout", "target": "stopped", "message": "still Started"}
    with pytest.raises(AirflowSensorTimeout, match="still Started"):
        sensor.execute_complete({}, event)
    soft = PuddleSystemStateSensor(task_id="s", system_id="x", target_state="stopped", deferrable=True,
                                   soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": event}, {})  # type: ignore[arg-type]


def test_sensor_defaults_and_validation() -> None:
    sensor = PuddleSystemStateSensor(task_id="d", system_id="x")
    assert (sensor.poke_interval, sensor.timeout, sensor.target_state) == (5, 1200, "started")
    with pytest.raises(ValueError, match="target_state: must be one of started, stopped, terminated, failed"):
        PuddleSystemStateSensor(task_id="v", system_id="x", target_state="running")
    with pytest.raises(ValueError, match="system_id, system_name: give exactly one of them"):
        PuddleSystemStateSensor(task_id="both", system_id="x", system_name="y")
    with pytest.raises(ValueError, match="system_id, system_name: give exactly one of them"):
        PuddleSystemStateSensor(task_id="neither")
    for n, bad in enumerate([0, -1, float("nan"), float("inf"), True]):
        with pytest.raises(ValueError, match="poke_interval: must be"):
            PuddleSystemStateSensor(task_id=f"p{n}", system_id="x", poke_interval=bad)


@pytest.mark.parametrize("cu", ["abc", float("nan"), True, -1, 0, 1.5, 10**9, None, "1.5"])
def test_cu_sensor_refuses_what_is_not_a_cu_count(cu: object) -> None:
    from airflow_puddle.domain.errors import ValidationFailedError
    from airflow_puddle.sensors.puddle import PuddleCUAvailableSensor

    with pytest.raises(ValidationFailedError, match="cu: must be a whole number of compute units from 1"):
        PuddleCUAvailableSensor(task_id="cu", cu=cu)  # type: ignore[arg-type]


def test_cu_sensor_takes_a_count_a_digit_string_or_a_template() -> None:
    from airflow_puddle.sensors.puddle import PuddleCUAvailableSensor, cu_needed

    for n, cu in enumerate((4, "4", "{{ params.cu }}")):
        PuddleCUAvailableSensor(task_id=f"cu{n}", cu=cu)
    assert cu_needed(" 4 ") == cu_needed(4) == 4
