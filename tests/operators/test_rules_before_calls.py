"""Every rule that needs no server is checked on the rendered values before the first call.

The connection points at a port where nothing listens: a task that made any call would fail
with Puddle unavailable instead of the validation error named here. Runs through real Airflow
(``dag.test()``), operators and sensors alike, with both clients.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_puddle.operators.puddle import (
    PuddleCreateSystemOperator,
    PuddleStopSystemOperator,
    PuddleUpdateConfigTomlOperator,
)
from airflow_puddle.sensors.puddle import PuddleCUAvailableSensor, PuddleSystemStateSensor
from tests.conftest import client_extra, connection_json
from tests.operators.test_operators import run_dag

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.both_clients]

NOT_AN_ID = "must be 1 to 128 letters, digits, '.', '_', ':' or '-'"
REFUSED = {
    # tags, once rendered (a value that is not a string is refused when the DAG is parsed: see below)
    "tag_rendered_none": ("C(tags={'Team': '{{ None }}'})", "value of tag 'Team' must be a non-empty string, "
                                                            "got 'None'"),
    "tag_rendered_huge": ("C(tags={'Team': '{{ \"x\" * 1000 }}'})",
                          "value of tag 'Team' must be at most 256 characters, got 1,000"),
    # create's simple rules, before its CreateSystem
    "disk": ("C(disk_size_gb=10)", "disk_size_gb: must be between 256 and 1024 GB, got 10"),
    "no_version": ("C(version=None)", "version: is required when image is not set"),
    "product_spark": ("C(product='spark')", "product: must be one of dai, h2o3, got 'spark'"),
    "product_rendered_none": ("C(product='{{ None }}')", "product: got 'None': a template that rendered nothing"),
    # a rendered non-id, for every operator and sensor that takes system_id
    "terminate_list": ("PuddleTerminateSystemOperator(system_id='{{ [1, 2] }}', **COMMON)",
                       f"system_id: {NOT_AN_ID} (a system's id, such as a UUID), got '[1, 2]'"),
    "stop_list": ("PuddleStopSystemOperator(system_id='{{ [1, 2] }}', **COMMON)", NOT_AN_ID),
    "start_dict": ("PuddleStartSystemOperator(system_id='{{ {\"id\": 1} }}', **COMMON)", NOT_AN_ID),
    "restart_list": ("PuddleRestartSystemOperator(system_id='{{ [1, 2] }}', **COMMON)", NOT_AN_ID),
    "refresh_list": ("PuddleRefreshIdleTimeoutOperator(system_id='{{ [1, 2] }}', **COMMON)", NOT_AN_ID),
    "stop_by_rendered_name": ("PuddleStopSystemOperator(system_name='{{ None }}', **COMMON)",
                              "name: must contain only lowercase letters"),
    "sensor_list": ("PuddleSystemStateSensor(system_id='{{ [1, 2] }}', poke_interval=0.05)", NOT_AN_ID),
    "sensor_empty": ("PuddleSystemStateSensor(system_id='', poke_interval=0.05)",
                     "system_id: is required (a non-empty string), got ''"),
    "config_sensor_list": ("PuddleConfigTomlUploadedSensor(system_id='{{ [1, 2] }}', poke_interval=0.05)",
                           NOT_AN_ID),
    "cu_rendered_none": ("PuddleCUAvailableSensor(cu='{{ None }}', poke_interval=0.05)",
                         "cu: must be a whole number of compute units"),
    # config.toml, before the GetSystem that finds the system
    "bad_toml": ("PuddleUpdateConfigTomlOperator(system_name='cfg', config_toml='a = = b', **COMMON)",
                 "config_toml: is not valid TOML"),
}


def test_rules_that_need_no_server_fail_before_any_call(
    airflow_db: str, monkeypatch: pytest.MonkeyPatch, puddle_client: str,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT",
                       connection_json("http://127.0.0.1:9", **client_extra(puddle_client)))  # nothing listens
    body = "from airflow_puddle.sensors.puddle import *\n" + "\n".join(
        f"_{task_id} = {call.replace('C(', f'C(task_id={task_id!r}, ', 1) if call.startswith('C(') else call[:-1]}"
        + ("" if call.startswith("C(") else f", task_id={task_id!r})")
        for task_id, (call, _) in REFUSED.items())
    body = ("C = lambda **kw: PuddleCreateSystemOperator(**{**CREATE, 'name': 'hostile', **COMMON, **kw})\n" + body)
    run, states = run_dag(f"rules_first_{puddle_client}", False, body)
    assert states == dict.fromkeys(REFUSED, "failed"), states
    out, err = capfd.readouterr()
    text = caplog.text + out + err
    missing = {task_id: rule for task_id, (_, rule) in REFUSED.items() if rule not in text}
    assert not missing, missing
    assert "Puddle unavailable" not in text and "failed to connect" not in text


@pytest.mark.parametrize(("build", "message"), [
    (lambda: PuddleStopSystemOperator(task_id="t", system_id="a", timeout=1e14),
     "timeout: must be at most 30 days"),
    (lambda: PuddleStopSystemOperator(task_id="t", system_id="a", poll_interval=1e9),
     "poll_interval: must be at most 1 hours \\(3600 seconds\\)"),
    (lambda: PuddleStopSystemOperator(task_id="t", system_id="a", wait_for_completion="false"),
     "wait_for_completion: must be True or False, got 'false'"),
    (lambda: PuddleStopSystemOperator(task_id="t", system_id="a", deferrable="no"),
     "deferrable: must be True or False, got 'no'"),
    (lambda: PuddleCreateSystemOperator(task_id="t", name="n", product="dai", version="1", instance_type_name="m",
                                        terminate_on_failure="false"),
     "terminate_on_failure: must be True or False"),
    *[(lambda bad=bad: PuddleCreateSystemOperator(task_id="t", name="n", product="dai", version="1",
                                                  instance_type_name="m", tags={"Team": bad}),
       f"tags: value of tag 'Team' must be a non-empty string, got {type(bad).__name__}")
      for bad in (None, 5, True, ["ml"], 1.5)],
    (lambda: PuddleCreateSystemOperator(task_id="t", name="n", product="dai", version="1", instance_type_name="m",
                                        tags={"Team": "x" * 1_000_000}),
     "tags: value of tag 'Team' must be at most 256 characters, got 1,000,000"),
    (lambda: PuddleUpdateConfigTomlOperator(task_id="t", system_id="a", config_toml="", restart="yes"),
     "restart: must be True or False"),
    (lambda: PuddleSystemStateSensor(task_id="t", system_id="a", timeout=1e14),
     "timeout: must be at most 30 days"),
    (lambda: PuddleSystemStateSensor(task_id="t", system_id="a", poke_interval=1e9),
     "poke_interval: must be at most 1 hours"),
    (lambda: PuddleSystemStateSensor(task_id="t", system_id="a", deferrable="false"),
     "deferrable: must be True or False"),
    (lambda: PuddleCUAvailableSensor(task_id="t", cu=1, timeout=float(10**12)), "timeout: must be at most 30 days"),
])
def test_hostile_settings_are_refused_when_built(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
